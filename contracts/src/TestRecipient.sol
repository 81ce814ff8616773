// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {IMessageRecipient} from "./Interfaces.sol";

/// @notice Devnet message recipient: counts deliveries and can be told to revert (fault tests).
contract TestRecipient is IMessageRecipient {
    address public immutable mailbox;
    address public owner;
    bool public shouldRevert;
    uint256 public received;

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
        emit Received(origin, sender, body);
    }
}
