// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @notice Depth-32 Merkle checks, the same tree as adapters/merkle.py
/// (node = keccak256(left | right); zero leaf = bytes32(0); Z<l> = root of an all-zero subtree of height l).
library MerkleLib {
    uint256 internal constant DEPTH = 32;

    error ProofLengthMismatch();

    bytes32 internal constant Z0 = 0x0000000000000000000000000000000000000000000000000000000000000000;
    bytes32 internal constant Z1 = 0xad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5;
    bytes32 internal constant Z2 = 0xb4c11951957c6f8f642c4af61cd6b24640fec6dc7fc607ee8206a99e92410d30;
    bytes32 internal constant Z3 = 0x21ddb9a356815c3fac1026b6dec5df3124afbadb485c9ba5a3e3398a04b7ba85;
    bytes32 internal constant Z4 = 0xe58769b32a1beaf1ea27375a44095a0d1fb664ce2dd358e7fcbfb78c26a19344;
    bytes32 internal constant Z5 = 0x0eb01ebfc9ed27500cd4dfc979272d1f0913cc9f66540d7e8005811109e1cf2d;
    bytes32 internal constant Z6 = 0x887c22bd8750d34016ac3c66b5ff102dacdd73f6b014e710b51e8022af9a1968;
    bytes32 internal constant Z7 = 0xffd70157e48063fc33c97a050f7f640233bf646cc98d9524c6b92bcf3ab56f83;
    bytes32 internal constant Z8 = 0x9867cc5f7f196b93bae1e27e6320742445d290f2263827498b54fec539f756af;
    bytes32 internal constant Z9 = 0xcefad4e508c098b9a7e1d8feb19955fb02ba9675585078710969d3440f5054e0;
    bytes32 internal constant Z10 = 0xf9dc3e7fe016e050eff260334f18a5d4fe391d82092319f5964f2e2eb7c1c3a5;
    bytes32 internal constant Z11 = 0xf8b13a49e282f609c317a833fb8d976d11517c571d1221a265d25af778ecf892;
    bytes32 internal constant Z12 = 0x3490c6ceeb450aecdc82e28293031d10c7d73bf85e57bf041a97360aa2c5d99c;
    bytes32 internal constant Z13 = 0xc1df82d9c4b87413eae2ef048f94b4d3554cea73d92b0f7af96e0271c691e2bb;
    bytes32 internal constant Z14 = 0x5c67add7c6caf302256adedf7ab114da0acfe870d449a3a489f781d659e8becc;
    bytes32 internal constant Z15 = 0xda7bce9f4e8618b6bd2f4132ce798cdc7a60e7e1460a7299e3c6342a579626d2;
    bytes32 internal constant Z16 = 0x2733e50f526ec2fa19a22b31e8ed50f23cd1fdf94c9154ed3a7609a2f1ff981f;
    bytes32 internal constant Z17 = 0xe1d3b5c807b281e4683cc6d6315cf95b9ade8641defcb32372f1c126e398ef7a;
    bytes32 internal constant Z18 = 0x5a2dce0a8a7f68bb74560f8f71837c2c2ebbcbf7fffb42ae1896f13f7c7479a0;
    bytes32 internal constant Z19 = 0xb46a28b6f55540f89444f63de0378e3d121be09e06cc9ded1c20e65876d36aa0;
    bytes32 internal constant Z20 = 0xc65e9645644786b620e2dd2ad648ddfcbf4a7e5b1a3a4ecfe7f64667a3f0b7e2;
    bytes32 internal constant Z21 = 0xf4418588ed35a2458cffeb39b93d26f18d2ab13bdce6aee58e7b99359ec2dfd9;
    bytes32 internal constant Z22 = 0x5a9c16dc00d6ef18b7933a6f8dc65ccb55667138776f7dea101070dc8796e377;
    bytes32 internal constant Z23 = 0x4df84f40ae0c8229d0d6069e5c8f39a7c299677a09d367fc7b05e3bc380ee652;
    bytes32 internal constant Z24 = 0xcdc72595f74c7b1043d0e1ffbab734648c838dfb0527d971b602bc216c9619ef;
    bytes32 internal constant Z25 = 0x0abf5ac974a1ed57f4050aa510dd9c74f508277b39d7973bb2dfccc5eeb0618d;
    bytes32 internal constant Z26 = 0xb8cd74046ff337f0a7bf2c8e03e10f642c1886798d71806ab1e888d9e5ee87d0;
    bytes32 internal constant Z27 = 0x838c5655cb21c6cb83313b5a631175dff4963772cce9108188b34ac87c81c41e;
    bytes32 internal constant Z28 = 0x662ee4dd2dd7b2bc707961b1e646c4047669dcb6584f0d8d770daf5d7e7deb2e;
    bytes32 internal constant Z29 = 0x388ab20e2573d171a88108e79d820e98f26c0b84aa8b2f4aa4968dbb818ea322;
    bytes32 internal constant Z30 = 0x93237c50ba75ee485f4c22adf2f741400bdf8d6a9cc7df7ecae576221665d735;
    bytes32 internal constant Z31 = 0x8448818bb4ae4562849e949e17ac16e0be16688e156b5cf15e098c627c0056a9;
    bytes32 internal constant Z32 = 0x27ae5ba08d7291c96c8cbddcc148bf48a6d68c7974b94356f53754ef6171d757;

    /// @dev The 33 zero hashes as a memory table (`zeroHashes()[l]` = Z<l>), for `multiproofRoot`.
    function zeroHashes() internal pure returns (bytes32[33] memory) {
        return [Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15, Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31, Z32];
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

    /// @notice Root that `n` known leaves and their multiproof `proof` lead to, for the tree of its first
    ///         `count` leaves: the walk of `_Multiproof.walk` in adapters/merkle.py. Level by level, known
    ///         nodes left to right: a left child whose right neighbour is known pairs with it; otherwise its
    ///         sibling is the next proof hash, except a right sibling whose subtree starts at or past `count`,
    ///         which is that level's zero hash (not in the proof); a right child without its left neighbour
    ///         takes the next proof hash. Reverts `ProofLengthMismatch` unless the walk uses every proof hash.
    /// @param entries Memory holding `n + 1` 64-byte slots: `n` of (position, node), positions strictly
    ///        increasing and below `count` (<= 2^32), then one spare slot. Overwritten in place.
    function multiproofRoot(uint256 entries, uint256 n, bytes32[] calldata proof, uint256 count)
        internal
        pure
        returns (bytes32 root)
    {
        bytes32[33] memory zeros = zeroHashes();
        bytes4 mismatch = ProofLengthMismatch.selector;
        assembly ("memory-safe") {
            let p := proof.offset
            let pEnd := add(p, shl(5, proof.length))
            let end := add(entries, shl(6, n))
            for { let level := 0 } lt(level, 32) { level := add(level, 1) } {
                // sentinel after the last known node: never its right neighbour
                mstore(end, not(0))
                let out := entries
                for { let e := entries } lt(e, end) { out := add(out, 0x40) } {
                    let pos := mload(e)
                    switch and(pos, 1)
                    case 0 {
                        mstore(0x00, mload(add(e, 0x20)))
                        let next := add(e, 0x40)
                        switch eq(mload(next), add(pos, 1))
                        case 1 {
                            mstore(0x20, mload(add(next, 0x20)))
                            e := add(next, 0x40)
                        }
                        default {
                            switch lt(shl(level, add(pos, 1)), count)
                            case 1 {
                                if eq(p, pEnd) {
                                    mstore(0x00, mismatch)
                                    revert(0x00, 0x04)
                                }
                                mstore(0x20, calldataload(p))
                                p := add(p, 0x20)
                            }
                            default { mstore(0x20, mload(add(zeros, shl(5, level)))) }
                            e := next
                        }
                    }
                    default {
                        if eq(p, pEnd) {
                            mstore(0x00, mismatch)
                            revert(0x00, 0x04)
                        }
                        mstore(0x20, mload(add(e, 0x20)))
                        mstore(0x00, calldataload(p))
                        p := add(p, 0x20)
                        e := add(e, 0x40)
                    }
                    mstore(out, shr(1, pos))
                    mstore(add(out, 0x20), keccak256(0x00, 0x40))
                }
                end := out
            }
            if iszero(eq(p, pEnd)) {
                mstore(0x00, mismatch)
                revert(0x00, 0x04)
            }
            // one node left (distinct positions below 2^32 meet at the root); otherwise no root at all
            switch eq(end, add(entries, 0x40))
            case 1 { root := mload(add(entries, 0x20)) }
            default { root := 0 }
        }
    }
}
