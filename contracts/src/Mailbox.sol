// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {MessageLib} from "./Message.sol";
import {IInterchainSecurityModule, IMessageRecipient} from "./Interfaces.sol";

/// @title Mailbox
/// @notice Origin side: builds messages, keeps the incremental Merkle tree (depth 32) of their ids.
///         Destination side: delivers messages whose checkpoint and proof the ISM accepts, at most once.
contract Mailbox {
    using MessageLib for bytes;

    uint256 internal constant TREE_DEPTH = 32;
    uint256 internal constant MAX_LEAVES = (1 << TREE_DEPTH) - 1;

    uint32 public immutable localDomain;
    address public owner;
    // `ism` and `count` share one storage slot.
    IInterchainSecurityModule public ism;
    uint32 public count;
    bytes32[32] internal branch;
    mapping(bytes32 => bool) public delivered;

    event Dispatch(bytes32 indexed id, uint32 indexed destination, bytes message);
    event Process(bytes32 indexed id, uint32 indexed origin);
    event IsmSet(address indexed ism);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner();
    error IsmNotSet();
    error InvalidVersion(uint8 version);
    error WrongDestination(uint32 destination, uint32 localDomain);
    error AlreadyDelivered(bytes32 id);
    error MixedOrigins(uint32 expected, uint32 got);
    error LengthMismatch();
    error BodyTooLong(uint256 length);
    error VerificationFailed(bytes32 id);
    error TreeFull();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor(uint32 localDomain_) {
        localDomain = localDomain_;
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    function setIsm(address ism_) external onlyOwner {
        ism = IInterchainSecurityModule(ism_);
        emit IsmSet(ism_);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    // ------------------------------------------------------------------ origin side

    function dispatch(uint32 destination, bytes32 recipient, bytes calldata body) external returns (bytes32 id) {
        uint256 size = count;
        (id, size) = _dispatch(size, destination, recipient, body);
        count = uint32(size);
    }

    function dispatchBatch(uint32[] calldata destinations, bytes32[] calldata recipients, bytes[] calldata bodies)
        external
        returns (bytes32[] memory ids)
    {
        uint256 n = destinations.length;
        if (recipients.length != n || bodies.length != n) revert LengthMismatch();
        ids = new bytes32[](n);
        uint256 size = count;
        for (uint256 i; i < n; ++i) {
            (ids[i], size) = _dispatch(size, destinations[i], recipients[i], bodies[i]);
        }
        count = uint32(size);
    }

    /// @dev Builds the message with nonce = `size`, inserts its id, returns the id and the new size.
    function _dispatch(uint256 size, uint32 destination, bytes32 recipient, bytes calldata body)
        internal
        returns (bytes32 id, uint256)
    {
        if (body.length > MessageLib.MAX_BODY_LEN) revert BodyTooLong(body.length);
        if (size >= MAX_LEAVES) revert TreeFull();
        bytes memory message = abi.encodePacked(
            MessageLib.VERSION,
            uint64(size),
            localDomain,
            bytes32(uint256(uint160(msg.sender))),
            destination,
            recipient,
            body
        );
        id = keccak256(message);
        // Incremental insert: walk up while the new size has a zero bit, then store at the first one bit.
        uint256 newSize = size + 1;
        uint256 s = newSize;
        bytes32 node = id;
        for (uint256 i; i < TREE_DEPTH; ++i) {
            if (s & 1 == 1) {
                branch[i] = node;
                break;
            }
            node = _hashPair(branch[i], node);
            s >>= 1;
        }
        emit Dispatch(id, destination, message);
        return (id, newSize);
    }

    /// @notice Root of the tree over the first `count` message ids (zero subtrees to the right).
    function root() external view returns (bytes32) {
        return _root(count);
    }

    /// @notice `root()` and `count()` read together.
    function latestCheckpoint() external view returns (bytes32, uint32) {
        uint32 size = count;
        return (_root(size), size);
    }

    function _root(uint256 size) internal view returns (bytes32 current) {
        bytes32 zero; // zero hash of level i
        for (uint256 i; i < TREE_DEPTH; ++i) {
            if ((size >> i) & 1 == 1) {
                current = _hashPair(branch[i], current);
            } else {
                current = _hashPair(current, zero);
            }
            zero = _hashPair(zero, zero);
        }
    }

    // ------------------------------------------------------------------ destination side

    function deliveredMany(bytes32[] calldata ids) external view returns (bool[] memory result) {
        result = new bool[](ids.length);
        for (uint256 i; i < ids.length; ++i) {
            result[i] = delivered[ids[i]];
        }
    }

    function process(bytes calldata metadata, bytes calldata message) external {
        _checkInbound(message);
        bytes32 id = message.id();
        if (delivered[id]) revert AlreadyDelivered(id);
        IInterchainSecurityModule ism_ = ism;
        if (address(ism_) == address(0)) revert IsmNotSet();
        if (!ism_.verify(metadata, message)) revert VerificationFailed(id);
        _deliver(id, message);
    }

    /// @notice Delivers messages from one origin proven under one signed checkpoint: `messages` in strictly
    ///         increasing nonce order, `proof` their Merkle multiproof against the checkpoint's root (see
    ///         MultisigIsm.verifyBatch). Ids already delivered are skipped silently (their leaves still count
    ///         in the proof), so racing relayers never revert each other's batches.
    function processBatch(bytes calldata checkpoint, bytes[] calldata messages, bytes32[] calldata proof)
        external
        returns (uint256 deliveredCount)
    {
        uint256 n = messages.length;
        if (n == 0) return 0;
        uint32 origin = messages[0].origin();
        for (uint256 i; i < n; ++i) {
            bytes calldata m = messages[i];
            _checkInbound(m);
            uint32 o = m.origin();
            if (o != origin) revert MixedOrigins(origin, o);
        }
        IInterchainSecurityModule ism_ = ism;
        if (address(ism_) == address(0)) revert IsmNotSet();
        // verifyBatch takes exactly processBatch's arguments: forward our calldata as is instead of re-encoding
        // it (the ISM decodes the very bytes we decoded, so both see the same checkpoint, messages and proof).
        checkpoint; // read by the ISM from the forwarded calldata
        proof; // likewise
        bytes4 sel = IInterchainSecurityModule.verifyBatch.selector;
        bool accepted;
        assembly ("memory-safe") {
            let p := mload(0x40)
            let len := sub(calldatasize(), 4)
            mstore(p, sel)
            calldatacopy(add(p, 4), 4, len)
            if iszero(staticcall(gas(), ism_, p, add(len, 4), 0x00, 0x20)) {
                returndatacopy(p, 0, returndatasize())
                revert(p, returndatasize())
            }
            accepted := and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1))
        }
        if (!accepted) revert VerificationFailed(bytes32(0));
        for (uint256 i; i < n; ++i) {
            bytes calldata m = messages[i];
            bytes32 id = m.id();
            if (delivered[id]) continue;
            _deliver(id, m);
            ++deliveredCount;
        }
    }

    function _checkInbound(bytes calldata message) internal view {
        message.checkLength();
        uint8 v = message.version();
        if (v != MessageLib.VERSION) revert InvalidVersion(v);
        uint32 d = message.destination();
        if (d != localDomain) revert WrongDestination(d, localDomain);
    }

    function _deliver(bytes32 id, bytes calldata message) internal {
        delivered[id] = true;
        uint32 origin = message.origin();
        IMessageRecipient(address(uint160(uint256(message.recipient())))).handle(
            origin, message.sender(), message.body()
        );
        emit Process(id, origin);
    }

    function _hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            h := keccak256(0x00, 0x40)
        }
    }
}
