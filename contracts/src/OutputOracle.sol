// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title OutputOracle
/// @notice OP Stack's L2OutputOracle, simplified: the proposer posts L2 output roots in increasing L2 block order,
///         each stamped with the L1 time it was posted; the challenger may delete an output (and every later one)
///         until it is `finalizationPeriodSeconds` old. An output root is, as in the OP Stack (version 0):
///           keccak256(bytes32(0) | l2StateRoot | l2ToL1MessagePasserStorageRoot | l2BlockHash)
///         Storage layout (light_clients/ethereum/output_roots.py proves it with eth_getProof; keep it):
///           slot 0                          outputs.length
///           keccak256(uint256(0)) + 2*i     outputs[i].outputRoot
///           keccak256(uint256(0)) + 2*i + 1 outputs[i].timestamp (low 16 bytes) | l2BlockNumber (high 16 bytes)
///         `outputs` is the only storage variable; everything else is immutable (in the code, not in storage).
///         Words at or above the length may be stale (deleteL2Outputs only shortens the array): not outputs.
contract OutputOracle {
    struct OutputProposal {
        bytes32 outputRoot;
        uint128 timestamp;
        uint128 l2BlockNumber;
    }

    OutputProposal[] internal outputs;

    address public immutable proposer;
    address public immutable challenger;
    uint256 public immutable finalizationPeriodSeconds;

    event OutputProposed(
        bytes32 indexed outputRoot, uint256 indexed l2OutputIndex, uint256 indexed l2BlockNumber, uint256 l1Timestamp
    );
    event OutputsDeleted(uint256 prevNextOutputIndex, uint256 newNextOutputIndex);

    error NotProposer();
    error NotChallenger();
    error EmptyOutputRoot();
    error BlockNumberNotIncreasing(uint256 latest, uint256 given);
    error BlockNumberTooLarge(uint256 given);
    error NoSuchOutput(uint256 index);
    error OutputFinalized(uint256 index);
    error NoOutputs();
    error NoOutputAfter(uint256 l2BlockNumber);

    constructor(address proposer_, address challenger_, uint256 finalizationPeriodSeconds_) {
        proposer = proposer_;
        challenger = challenger_;
        finalizationPeriodSeconds = finalizationPeriodSeconds_;
    }

    function proposeL2Output(bytes32 outputRoot, uint256 l2BlockNumber) external {
        if (msg.sender != proposer) revert NotProposer();
        if (outputRoot == bytes32(0)) revert EmptyOutputRoot();
        uint256 n = outputs.length;
        if (n > 0 && l2BlockNumber <= outputs[n - 1].l2BlockNumber) {
            revert BlockNumberNotIncreasing(outputs[n - 1].l2BlockNumber, l2BlockNumber);
        }
        if (l2BlockNumber > type(uint128).max) revert BlockNumberTooLarge(l2BlockNumber);
        outputs.push(OutputProposal(outputRoot, uint128(block.timestamp), uint128(l2BlockNumber)));
        emit OutputProposed(outputRoot, n, l2BlockNumber, block.timestamp);
    }

    /// @notice Deletes output `l2OutputIndex` and every later one; the output must not be finalized yet (later
    ///         ones were posted no earlier, so none of them is).
    function deleteL2Outputs(uint256 l2OutputIndex) external {
        if (msg.sender != challenger) revert NotChallenger();
        uint256 n = outputs.length;
        if (l2OutputIndex >= n) revert NoSuchOutput(l2OutputIndex);
        if (block.timestamp >= uint256(outputs[l2OutputIndex].timestamp) + finalizationPeriodSeconds) {
            revert OutputFinalized(l2OutputIndex);
        }
        // Truncate, as OP Stack's oracle does: only the length changes. The words above it are stale and no longer
        // outputs (a proof reads the length first); zeroing them would cost gas per output, and anvil keeps zeroed
        // slots in its storage trie (a stored zero, which a strict storage proof refuses).
        assembly {
            sstore(outputs.slot, l2OutputIndex)
        }
        emit OutputsDeleted(n, l2OutputIndex);
    }

    function nextOutputIndex() external view returns (uint256) {
        return outputs.length;
    }

    function latestOutputIndex() external view returns (uint256) {
        uint256 n = outputs.length;
        if (n == 0) revert NoOutputs();
        return n - 1;
    }

    function latestBlockNumber() public view returns (uint256) {
        uint256 n = outputs.length;
        return n == 0 ? 0 : outputs[n - 1].l2BlockNumber;
    }

    function getL2Output(uint256 index)
        external
        view
        returns (bytes32 outputRoot, uint128 timestamp, uint128 l2BlockNumber)
    {
        if (index >= outputs.length) revert NoSuchOutput(index);
        OutputProposal storage o = outputs[index];
        return (o.outputRoot, o.timestamp, o.l2BlockNumber);
    }

    /// @notice The lowest index whose output covers `l2BlockNumber` (its L2 block number is at least that).
    function getL2OutputIndexAfter(uint256 l2BlockNumber) external view returns (uint256) {
        uint256 hi = outputs.length;
        if (hi == 0 || outputs[hi - 1].l2BlockNumber < l2BlockNumber) revert NoOutputAfter(l2BlockNumber);
        uint256 lo;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (outputs[mid].l2BlockNumber < l2BlockNumber) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }
}
