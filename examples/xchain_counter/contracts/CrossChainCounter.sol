// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @notice The part of the devnet's Mailbox a sending app needs (declared here: this file compiles on its own).
interface IMailbox {
    function localDomain() external view returns (uint32);
    function dispatch(uint32 destination, bytes32 recipient, bytes calldata body) external returns (bytes32 id);
}

/// @title CrossChainCounter
/// @notice One counter per chain. `increment(destination, by)` sends `by` through the Mailbox to the counter enrolled
///         for `destination`; there the Mailbox calls `handle`, which counts it per origin domain and in total.
///         `handle` takes calls from the Mailbox only, and only messages sent by the counter enrolled for their
///         origin: anything else reverts with a typed error (the relayer's delivery then fails and nothing counts).
contract CrossChainCounter {
    IMailbox public immutable mailbox;
    uint32 public immutable localDomain;
    address public owner;

    /// @notice The counter of each remote domain (its address as bytes32); zero: none enrolled.
    mapping(uint32 => bytes32) public remotes;
    /// @notice Increments received, per origin domain.
    mapping(uint32 => uint256) public countFrom;
    /// @notice Increments received from every origin.
    uint256 public total;
    /// @notice Increments sent, per destination domain.
    mapping(uint32 => uint256) public sentTo;

    event Enrolled(uint32 indexed domain, bytes32 remote);
    event IncrementSent(uint32 indexed destination, bytes32 indexed messageId, uint256 by);
    event Incremented(uint32 indexed origin, bytes32 indexed sender, uint256 by, uint256 countFromOrigin, uint256 total);

    error NotOwner(address caller);
    error NotMailbox(address caller);
    error UnknownSender(uint32 origin, bytes32 sender);
    error NoRemote(uint32 destination);
    error ZeroIncrement();
    error MalformedBody(uint256 length);

    constructor(address mailbox_) {
        mailbox = IMailbox(mailbox_);
        localDomain = IMailbox(mailbox_).localDomain();
        owner = msg.sender;
    }

    /// @notice Trust `remote` as the counter of `domain` (zero removes it). Owner only.
    function enroll(uint32 domain, bytes32 remote) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        remotes[domain] = remote;
        emit Enrolled(domain, remote);
    }

    /// @notice Add `by` to the counter of `destination`, through the Mailbox; the message id.
    function increment(uint32 destination, uint256 by) external returns (bytes32 id) {
        bytes32 remote = remotes[destination];
        if (remote == bytes32(0)) revert NoRemote(destination);
        if (by == 0) revert ZeroIncrement();
        id = mailbox.dispatch(destination, remote, abi.encode(by));
        sentTo[destination] += by;
        emit IncrementSent(destination, id, by);
    }

    /// @notice Called by the Mailbox when a message for this counter is delivered.
    function handle(uint32 origin, bytes32 sender, bytes calldata body) external {
        if (msg.sender != address(mailbox)) revert NotMailbox(msg.sender);
        bytes32 remote = remotes[origin];
        if (remote == bytes32(0) || sender != remote) revert UnknownSender(origin, sender);
        if (body.length != 32) revert MalformedBody(body.length);
        uint256 by = abi.decode(body, (uint256));
        uint256 fromOrigin = countFrom[origin] + by;
        countFrom[origin] = fromOrigin;
        total += by;
        emit Incremented(origin, sender, by, fromOrigin, total);
    }
}
