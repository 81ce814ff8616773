// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @notice Depth-32 Merkle branch checks, the same tree as adapters/merkle.py
/// (node = keccak256(left | right); zero leaf = bytes32(0)).
library MerkleLib {
    uint256 internal constant DEPTH = 32;

    function branchRootCalldata(bytes32 leaf, bytes32[32] calldata proof, uint256 index)
        internal
        pure
        returns (bytes32 node)
    {
        assembly ("memory-safe") {
            node := leaf
            for { let i := 0 } lt(i, 32) { i := add(i, 1) } {
                let sibling := calldataload(add(proof, shl(5, i)))
                switch and(shr(i, index), 1)
                case 0 {
                    mstore(0x00, node)
                    mstore(0x20, sibling)
                }
                default {
                    mstore(0x00, sibling)
                    mstore(0x20, node)
                }
                node := keccak256(0x00, 0x40)
            }
        }
    }

    function branchRootMemory(bytes32 leaf, bytes32[32] memory proof, uint256 index)
        internal
        pure
        returns (bytes32 node)
    {
        assembly ("memory-safe") {
            node := leaf
            for { let i := 0 } lt(i, 32) { i := add(i, 1) } {
                let sibling := mload(add(proof, shl(5, i)))
                switch and(shr(i, index), 1)
                case 0 {
                    mstore(0x00, node)
                    mstore(0x20, sibling)
                }
                default {
                    mstore(0x00, sibling)
                    mstore(0x20, node)
                }
                node := keccak256(0x00, 0x40)
            }
        }
    }
}
