// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {MessageLib} from "./Message.sol";
import {MerkleLib} from "./Merkle.sol";
import {IInterchainSecurityModule} from "./Interfaces.sol";

/// @title MultisigIsm
/// @notice M-of-N validator signatures over a checkpoint (origin, originMailbox, root, index), plus a Merkle
///         proof of the message ids (leaf index = message nonce) under that root: one branch for `verify`, one
///         multiproof of the whole batch for `verifyBatch`. Matches adapters/checkpoint.py:
///           digest = keccak256("XCHAIN_CHECKPOINT_V1" | origin u32 | originMailbox | root | index u32)
///           signed = keccak256("\x19Ethereum Signed Message:\n32" | digest)
///         Signatures: 65-byte r|s|v concatenated, signers strictly ascending by address, low s, v in {27, 28}.
contract MultisigIsm is IInterchainSecurityModule {
    using MessageLib for bytes;

    uint256 internal constant SIGNATURE_LEN = 65;
    uint256 internal constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    address public owner;
    mapping(uint32 => address[]) internal _validators;
    mapping(uint32 => uint8) public threshold;
    mapping(uint32 => mapping(address => bool)) public isValidator;

    event ValidatorsSet(uint32 indexed origin, address[] validators, uint8 threshold);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner();
    error InvalidValidatorSet();
    error NoValidatorSet(uint32 origin);
    error ThresholdNotMet(uint256 signatures, uint256 threshold);
    error InvalidSignatureLength(uint256 length);
    error InvalidSignature(uint256 index);
    error UnknownSigner(address signer);
    error SignersNotSorted(uint256 index);
    error InvalidProof(bytes32 id);
    error LeafNotInCheckpoint(bytes32 id, uint64 nonce, uint32 index);
    error MixedOrigins(uint32 expected, uint32 got);
    error EmptyBatch();
    error NoncesNotIncreasing(uint256 index);
    error ProofLengthMismatch();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function setValidators(uint32 origin, address[] calldata validators, uint8 threshold_) external onlyOwner {
        if (threshold_ == 0 || threshold_ > validators.length) revert InvalidValidatorSet();
        address[] storage old = _validators[origin];
        for (uint256 i; i < old.length; ++i) {
            isValidator[origin][old[i]] = false;
        }
        delete _validators[origin];
        for (uint256 i; i < validators.length; ++i) {
            address v = validators[i];
            if (v == address(0) || isValidator[origin][v]) revert InvalidValidatorSet();
            isValidator[origin][v] = true;
            _validators[origin].push(v);
        }
        threshold[origin] = threshold_;
        emit ValidatorsSet(origin, validators, threshold_);
    }

    function validatorsAndThreshold(uint32 origin) external view returns (address[] memory, uint8) {
        return (_validators[origin], threshold[origin]);
    }

    function checkpointDigest(uint32 origin, bytes32 originMailbox, bytes32 root, uint32 index)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked("XCHAIN_CHECKPOINT_V1", origin, originMailbox, root, index));
    }

    /// @inheritdoc IInterchainSecurityModule
    function verify(bytes calldata metadata, bytes calldata message) external view returns (bool) {
        message.checkLength();
        (bytes32 originMailbox, bytes32 root, uint32 index, bytes memory signatures, bytes32[32] memory proof) =
            abi.decode(metadata, (bytes32, bytes32, uint32, bytes, bytes32[32]));
        uint32 origin = message.origin();
        _verifySignatures(origin, checkpointDigest(origin, originMailbox, root, index), signatures);
        bytes32 id = message.id();
        uint64 nonce = message.nonce();
        if (nonce > index) revert LeafNotInCheckpoint(id, nonce, index);
        if (MerkleLib.branchRootMemory(id, proof, nonce) != root) revert InvalidProof(id);
        return true;
    }

    /// @inheritdoc IInterchainSecurityModule
    /// @dev Signatures are checked once; then the root is computed from the message ids at leaf positions =
    ///      nonces with `proof` (MerkleLib.multiproofRoot) and must equal the checkpoint's root. A proof that
    ///      leads elsewhere reverts `InvalidProof(bytes32(0))` (no single id is to blame); one with too few or
    ///      too many hashes reverts `ProofLengthMismatch()`.
    function verifyBatch(bytes calldata checkpoint, bytes[] calldata messages, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        uint256 n = messages.length;
        if (n == 0) revert EmptyBatch();
        bytes calldata first = messages[0];
        first.checkLength();
        uint32 origin = first.origin();
        (bytes32 root, uint32 index) = _verifyCheckpoint(origin, checkpoint);
        // n (position, id) slots plus the spare slot multiproofRoot uses as a sentinel
        uint256 entries;
        assembly ("memory-safe") {
            entries := mload(0x40)
            mstore(0x40, add(entries, shl(6, add(n, 1))))
        }
        uint256 previous;
        for (uint256 i; i < n; ++i) {
            bytes calldata m = messages[i];
            m.checkLength();
            uint32 o = m.origin();
            if (o != origin) revert MixedOrigins(origin, o);
            uint64 nonce = m.nonce();
            if (i != 0 && nonce <= previous) revert NoncesNotIncreasing(i);
            previous = nonce;
            bytes32 id = m.id();
            if (nonce > index) revert LeafNotInCheckpoint(id, nonce, index);
            assembly ("memory-safe") {
                let e := add(entries, shl(6, i))
                mstore(e, nonce)
                mstore(add(e, 0x20), id)
            }
        }
        if (MerkleLib.multiproofRoot(entries, n, proof, uint256(index) + 1) != root) revert InvalidProof(bytes32(0));
        return true;
    }

    function _verifyCheckpoint(uint32 origin, bytes calldata checkpoint) internal view returns (bytes32, uint32) {
        (bytes32 originMailbox, bytes32 root, uint32 index, bytes memory signatures) =
            abi.decode(checkpoint, (bytes32, bytes32, uint32, bytes));
        _verifySignatures(origin, checkpointDigest(origin, originMailbox, root, index), signatures);
        return (root, index);
    }

    function _verifySignatures(uint32 origin, bytes32 digest, bytes memory signatures) internal view {
        uint256 required = threshold[origin];
        if (required == 0) revert NoValidatorSet(origin);
        uint256 len = signatures.length;
        if (len % SIGNATURE_LEN != 0) revert InvalidSignatureLength(len);
        uint256 count = len / SIGNATURE_LEN;
        if (count < required) revert ThresholdNotMet(count, required);
        bytes32 signed = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", digest));
        mapping(address => bool) storage members = isValidator[origin];
        address previous;
        for (uint256 i; i < count; ++i) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                let p := add(add(signatures, 0x20), mul(i, 65))
                r := mload(p)
                s := mload(add(p, 0x20))
                v := byte(0, mload(add(p, 0x40)))
            }
            if ((v != 27 && v != 28) || uint256(s) > HALF_N) revert InvalidSignature(i);
            address signer = ecrecover(signed, v, r, s);
            if (signer == address(0)) revert InvalidSignature(i);
            if (signer <= previous) revert SignersNotSorted(i);
            if (!members[signer]) revert UnknownSigner(signer);
            previous = signer;
        }
    }
}
