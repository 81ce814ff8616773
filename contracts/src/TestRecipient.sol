// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {IMessageRecipient} from "./Interfaces.sol";

/// @notice Devnet message recipient: counts deliveries, can be told to revert (fault tests), and burns gas for a
///         body "burn:" + uint32 rounds (about 100 gas a round: a costly handle, for the manual-execution tests).
contract TestRecipient is IMessageRecipient {
    address public immutable mailbox;
    address public owner;
    bool public shouldRevert;
    uint256 public received;
    bytes32 public sink;

    event Received(uint32 indexed origin, bytes32 indexed sender, bytes body);

    error NotMailbox();
    error NotOwner();
    error RecipientReverted();

    constructor(address mailbox_) {
        mailbox = mailbox_;
        owner = msg.sender;
    }

    function setRevert(bool value) external {
        if (msg.sender != owner) revert NotOwner();
        shouldRevert = value;
    }

    function handle(uint32 origin, bytes32 sender, bytes calldata body) external {
        if (msg.sender != mailbox) revert NotMailbox();
        if (shouldRevert) revert RecipientReverted();
        unchecked {
            ++received;
        }
        if (body.length >= 9 && bytes5(body[:5]) == "burn:") _burn(uint32(bytes4(body[5:9])));
        emit Received(origin, sender, body);
    }

    function _burn(uint256 rounds) internal {
        bytes32 h = sink;
        for (uint256 i; i < rounds; ++i) {
            assembly ("memory-safe") {
                mstore(0x00, h)
                mstore(0x20, i)
                h := keccak256(0x00, 0x40)
            }
        }
        sink = h;
    }
}
