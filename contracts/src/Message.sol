// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @notice The chain-neutral message layout (see DESIGN.md and adapters/message.py):
///   version u8 | nonce u64 | origin u32 | sender bytes32 | destination u32 | recipient bytes32 | body
/// Readers take calldata and never copy the message except to hash it.
library MessageLib {
    uint8 internal constant VERSION = 1;
    uint256 internal constant HEADER_LEN = 81;
    uint256 internal constant MAX_BODY_LEN = 64 * 1024;

    error MessageTooShort(uint256 length);

    function checkLength(bytes calldata m) internal pure {
        if (m.length < HEADER_LEN) revert MessageTooShort(m.length);
    }

    function version(bytes calldata m) internal pure returns (uint8 v) {
        assembly ("memory-safe") {
            v := shr(248, calldataload(m.offset))
        }
    }

    function nonce(bytes calldata m) internal pure returns (uint64 n) {
        assembly ("memory-safe") {
            n := shr(192, calldataload(add(m.offset, 1)))
        }
    }

    function origin(bytes calldata m) internal pure returns (uint32 o) {
        assembly ("memory-safe") {
            o := shr(224, calldataload(add(m.offset, 9)))
        }
    }

    function sender(bytes calldata m) internal pure returns (bytes32 s) {
        assembly ("memory-safe") {
            s := calldataload(add(m.offset, 13))
        }
    }

    function destination(bytes calldata m) internal pure returns (uint32 d) {
        assembly ("memory-safe") {
            d := shr(224, calldataload(add(m.offset, 45)))
        }
    }

    function recipient(bytes calldata m) internal pure returns (bytes32 r) {
        assembly ("memory-safe") {
            r := calldataload(add(m.offset, 49))
        }
    }

    function body(bytes calldata m) internal pure returns (bytes calldata) {
        return m[HEADER_LEN:];
    }

    /// @dev keccak256 of the message, hashed in scratch memory past the free pointer (nothing allocated).
    function id(bytes calldata m) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, m.offset, m.length)
            h := keccak256(p, m.length)
        }
    }
}
