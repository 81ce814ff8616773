// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {IERC20Minimal, IMailbox, IMessageRecipient} from "./Interfaces.sol";
import {WrappedToken} from "./WrappedToken.sol";

/// @title TokenBridge
/// @notice Lock/unlock of tokens homed here, mint/burn of wrapped tokens homed elsewhere.
///         Body = abi.encode(uint32 homeDomain, bytes32 homeToken, bytes32 recipient, uint256 amount),
///         sent to the enrolled bridge of the destination. A token's identity is its (homeDomain, homeToken),
///         so wrapped tokens move between any two non-home domains and back home.
///
///         Amounts travel in the token's HOME units. A destination with fewer decimals (an SPL mint, a Cosmos
///         denom) divides by its scale and holds at most its own maximum; an amount it cannot represent, or a
///         token it does not know, would be locked or burnt here and never delivered there. So every
///         (destination, token) pair is an explicit route the owner enrols with its scale and maximum, and
///         transferRemote refuses, before anything moves, a token without a route, an amount that is not a
///         multiple of the scale and an amount above the maximum.
///
///         Rate limits (CCIP's token bucket, Wormhole's governor): per remote domain, token and direction, the owner
///         may set a bucket (capacity, refill per second; capacity 0 = no limit). Outbound, a transfer over the
///         bucket's room reverts, before anything moves, with the seconds to wait. Inbound, a transfer over the
///         room is not reverted (the message is delivered) but queued here, and anyone may release it once the
///         bucket has room (one larger than the capacity: once the bucket is full, emptying it). Flow cancelling:
///         a transfer paid out inbound refills the outbound bucket of the same domain and token by its amount.
contract TokenBridge is IMessageRecipient {
    struct Home {
        uint32 domain;
        bytes32 token;
    }

    /// @dev One storage slot: one cold SLOAD (2,100 gas) per transferRemote.
    struct Route {
        uint128 scale; // home units per destination unit: 10**(home decimals - destination decimals); 0 = no route
        uint128 maxAmount; // largest amount (home units) the destination can hold; UNBOUNDED = no limit
    }

    /// @dev A token bucket; ``capacity`` 0: no limit. ``tokens`` and ``updatedAt`` share the capacity's slot, so an
    ///      unlimited direction costs one SLOAD.
    struct Bucket {
        uint112 capacity;
        uint112 tokens;
        uint32 updatedAt;
        uint128 ratePerSecond;
    }

    struct QueuedTransfer {
        uint32 origin;
        address token;
        address recipient;
        uint256 amount;
    }

    /// @notice ``maxAmount`` of a route whose destination holds any uint256 amount (an EVM chain).
    uint128 public constant UNBOUNDED = type(uint128).max;

    IMailbox public immutable mailbox;
    uint32 public immutable localDomain;
    address public owner;
    mapping(uint32 => bytes32) public remoteBridge;
    mapping(uint32 => mapping(bytes32 => address)) public wrappedToken;
    mapping(address => Home) internal _homeOf;
    /// @notice destination domain => token on this chain (home token or wrapped token) => route
    mapping(uint32 => mapping(address => Route)) public routes;
    /// @notice remote domain => token on this chain => bucket, per direction
    mapping(uint32 => mapping(address => Bucket)) public outboundLimits;
    mapping(uint32 => mapping(address => Bucket)) public inboundLimits;
    /// @notice inbound transfers waiting for room, by queue id (0 = none)
    mapping(uint256 => QueuedTransfer) public queued;
    uint256 public queuedCount;

    event RemoteEnrolled(uint32 indexed domain, bytes32 bridge);
    event WrappedCreated(uint32 indexed homeDomain, bytes32 indexed homeToken, address token);
    event SentTransferRemote(bytes32 indexed id, uint32 indexed destination, bytes32 recipient, uint256 amount);
    event ReceivedTransferRemote(uint32 indexed origin, bytes32 indexed recipient, uint256 amount);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event RouteEnrolled(uint32 indexed destination, address indexed token, uint128 scale, uint128 maxAmount);
    event RouteRemoved(uint32 indexed destination, address indexed token);
    event RateLimitSet(uint32 indexed domain, address indexed token, bool inbound, uint112 capacity, uint128 ratePerSecond);
    event TransferQueued(uint256 indexed queueId, uint32 indexed origin, address indexed recipient, address token,
        uint256 amount);
    event QueuedTransferReleased(uint256 indexed queueId, address indexed recipient, uint256 amount);

    error NotOwner();
    error NotMailbox();
    error NoRemoteBridge(uint32 domain);
    error UnknownSender(uint32 origin, bytes32 sender);
    error UnknownToken(uint32 homeDomain, bytes32 homeToken);
    error WrappedExists(uint32 homeDomain, bytes32 homeToken);
    error InvalidHome(uint32 homeDomain);
    error ZeroAmount();
    error TokenTransferFailed(address token);
    error NoRoute(uint32 destination, address token);
    error AmountNotRepresentable(uint32 destination, address token, uint256 amount, uint256 scale);
    error AmountAboveRouteMax(uint32 destination, address token, uint256 amount, uint256 maxAmount);
    error InvalidRoute(uint128 scale, uint128 maxAmount);
    error RateLimited(uint32 domain, address token, uint256 amount, uint256 available, uint256 waitSeconds);
    error AmountAboveCapacity(uint32 domain, address token, uint256 amount, uint256 capacity);
    error NotQueued(uint256 queueId);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor(address mailbox_, uint32 localDomain_) {
        mailbox = IMailbox(mailbox_);
        localDomain = localDomain_;
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function enrollRemote(uint32 domain, bytes32 bridge) external onlyOwner {
        remoteBridge[domain] = bridge;
        emit RemoteEnrolled(domain, bridge);
    }

    /// @notice Allow ``token`` (a token on this chain) to be sent to ``destination``: amounts must be multiples
    ///         of ``scale`` and at most ``maxAmount`` (home units; UNBOUNDED for no limit). Re-enrolling
    ///         replaces the route.
    function enrollRoute(uint32 destination, address token, uint128 scale, uint128 maxAmount) external onlyOwner {
        if (scale == 0 || maxAmount < scale || token == address(0)) revert InvalidRoute(scale, maxAmount);
        routes[destination][token] = Route(scale, maxAmount);
        emit RouteEnrolled(destination, token, scale, maxAmount);
    }

    /// @notice Limit ``token`` to or from ``domain`` (``inbound``): at most ``capacity`` at once, refilled at
    ///         ``ratePerSecond`` (home units). capacity 0 removes the limit. The bucket starts full.
    function setRateLimit(uint32 domain, address token, bool inbound, uint112 capacity, uint128 ratePerSecond)
        external
        onlyOwner
    {
        Bucket storage b = inbound ? inboundLimits[domain][token] : outboundLimits[domain][token];
        (b.capacity, b.tokens, b.updatedAt, b.ratePerSecond) = (capacity, capacity, uint32(block.timestamp), ratePerSecond);
        emit RateLimitSet(domain, token, inbound, capacity, ratePerSecond);
    }

    /// @notice What ``token`` may move to or from ``domain`` now (type(uint256).max: no limit), and the bucket.
    function rateLimitRoom(uint32 domain, address token, bool inbound)
        external
        view
        returns (uint256 available, uint256 capacity, uint256 ratePerSecond)
    {
        Bucket memory b = inbound ? inboundLimits[domain][token] : outboundLimits[domain][token];
        if (b.capacity == 0) return (type(uint256).max, 0, 0);
        return (_refilled(b), b.capacity, b.ratePerSecond);
    }

    function removeRoute(uint32 destination, address token) external onlyOwner {
        delete routes[destination][token];
        emit RouteRemoved(destination, token);
    }

    function createWrapped(uint32 homeDomain, bytes32 homeToken, string calldata name, string calldata symbol, uint8 decimals)
        external
        onlyOwner
        returns (address token)
    {
        if (homeDomain == localDomain) revert InvalidHome(homeDomain);
        if (wrappedToken[homeDomain][homeToken] != address(0)) revert WrappedExists(homeDomain, homeToken);
        token = address(new WrappedToken(name, symbol, decimals, homeDomain, homeToken));
        wrappedToken[homeDomain][homeToken] = token;
        _homeOf[token] = Home(homeDomain, homeToken);
        emit WrappedCreated(homeDomain, homeToken, token);
    }

    /// @notice The (homeDomain, homeToken) of one of this bridge's wrapped tokens; (0, 0) for any other address.
    function homeOf(address token) external view returns (uint32, bytes32) {
        Home memory h = _homeOf[token];
        return (h.domain, h.token);
    }

    function transferRemote(address token, uint32 destination, bytes32 recipient, uint256 amount)
        external
        returns (bytes32 id)
    {
        if (amount == 0) revert ZeroAmount();
        bytes32 remote = remoteBridge[destination];
        if (remote == bytes32(0)) revert NoRemoteBridge(destination);
        _checkRoute(destination, token, amount);
        _takeOutbound(destination, token, amount);
        Home memory home = _homeOf[token];
        if (home.domain != 0 || home.token != bytes32(0)) {
            WrappedToken(token).burn(msg.sender, amount);
        } else {
            _call(token, abi.encodeCall(IERC20Minimal.transferFrom, (msg.sender, address(this), amount)));
            home = Home(localDomain, bytes32(uint256(uint160(token))));
        }
        id = mailbox.dispatch(destination, remote, abi.encode(home.domain, home.token, recipient, amount));
        emit SentTransferRemote(id, destination, recipient, amount);
    }

    function handle(uint32 origin, bytes32 sender, bytes calldata body) external {
        if (msg.sender != address(mailbox)) revert NotMailbox();
        if (sender == bytes32(0) || sender != remoteBridge[origin]) revert UnknownSender(origin, sender);
        (uint32 homeDomain, bytes32 homeToken, bytes32 recipient, uint256 amount) =
            abi.decode(body, (uint32, bytes32, bytes32, uint256));
        address to = address(uint160(uint256(recipient)));
        address token = homeDomain == localDomain ? address(uint160(uint256(homeToken))) : wrappedToken[homeDomain][homeToken];
        if (token == address(0)) revert UnknownToken(homeDomain, homeToken);
        if (!_takeInbound(origin, token, amount)) {
            uint256 queueId = ++queuedCount;
            queued[queueId] = QueuedTransfer(origin, token, to, amount);
            emit TransferQueued(queueId, origin, to, token, amount);
            return;
        }
        _payOut(origin, token, to, amount);
    }

    /// @notice Pay out a queued inbound transfer once its bucket has room (anyone may call; only the recipient gains).
    function releaseQueued(uint256 queueId) external {
        QueuedTransfer memory q = queued[queueId];
        if (q.amount == 0) revert NotQueued(queueId);
        if (!_takeInbound(q.origin, q.token, q.amount)) {
            Bucket memory b = inboundLimits[q.origin][q.token];
            uint256 available = _refilled(b);
            revert RateLimited(q.origin, q.token, q.amount, available, _wait(b, q.amount, available));
        }
        delete queued[queueId];
        _payOut(q.origin, q.token, q.recipient, q.amount);
        emit QueuedTransferReleased(queueId, q.recipient, q.amount);
    }

    /// @dev Pays ``amount`` of ``token`` to ``to`` (unlock a home token, mint a wrapped one), then refills the
    ///      outbound bucket towards ``origin`` by it.
    function _payOut(uint32 origin, address token, address to, uint256 amount) internal {
        Home memory home = _homeOf[token];
        if (home.domain == 0 && home.token == bytes32(0)) {
            _call(token, abi.encodeCall(IERC20Minimal.transfer, (to, amount)));
        } else {
            WrappedToken(token).mint(to, amount);
        }
        emit ReceivedTransferRemote(origin, bytes32(uint256(uint160(to))), amount);
        Bucket storage out = outboundLimits[origin][token];
        if (out.capacity != 0) {  // flow cancelling: what came in may go back out
            uint256 refilled = _refilled(out) + amount;
            (out.tokens, out.updatedAt) =
                (uint112(refilled > out.capacity ? out.capacity : refilled), uint32(block.timestamp));
        }
    }

    function _takeOutbound(uint32 destination, address token, uint256 amount) internal {
        Bucket storage b = outboundLimits[destination][token];
        if (b.capacity == 0) return;
        if (amount > b.capacity) revert AmountAboveCapacity(destination, token, amount, b.capacity);
        uint256 available = _refilled(b);
        if (amount > available) revert RateLimited(destination, token, amount, available, _wait(b, amount, available));
        (b.tokens, b.updatedAt) = (uint112(available - amount), uint32(block.timestamp));
    }

    /// @dev Takes ``amount`` from the inbound bucket if it has room (one above the capacity: when the bucket is full).
    function _takeInbound(uint32 origin, address token, uint256 amount) internal returns (bool) {
        Bucket storage b = inboundLimits[origin][token];
        if (b.capacity == 0) return true;
        uint256 available = _refilled(b);
        if (amount > available && available < b.capacity) return false;
        (b.tokens, b.updatedAt) = (uint112(amount > available ? 0 : available - amount), uint32(block.timestamp));
        return true;
    }

    function _refilled(Bucket memory b) internal view returns (uint256) {
        uint256 full = uint256(b.tokens) + (block.timestamp - b.updatedAt) * uint256(b.ratePerSecond);
        return full > b.capacity ? b.capacity : full;
    }

    /// @dev Seconds until ``amount`` fits (at most the time to fill the bucket); type(uint256).max without refill.
    function _wait(Bucket memory b, uint256 amount, uint256 available) internal pure returns (uint256) {
        if (b.ratePerSecond == 0) return type(uint256).max;
        uint256 need = (amount > b.capacity ? b.capacity : amount) - available;
        return (need + b.ratePerSecond - 1) / b.ratePerSecond;
    }

    /// @dev Refuses what the destination could not deliver: no route for the token, an amount finer than the
    ///      destination's decimals, or above what it can hold. Runs before any token moves.
    function _checkRoute(uint32 destination, address token, uint256 amount) internal view {
        Route memory r = routes[destination][token];
        if (r.scale == 0) revert NoRoute(destination, token);
        if (amount % r.scale != 0) revert AmountNotRepresentable(destination, token, amount, r.scale);
        if (r.maxAmount != UNBOUNDED && amount > r.maxAmount) {
            revert AmountAboveRouteMax(destination, token, amount, r.maxAmount);
        }
    }

    /// @dev Calls a token and accepts both "returns true" and "returns nothing" (non-standard tokens).
    function _call(address token, bytes memory data) internal {
        if (token.code.length == 0) revert TokenTransferFailed(token);
        (bool ok, bytes memory ret) = token.call(data);
        if (!ok || (ret.length != 0 && (ret.length < 32 || abi.decode(ret, (uint256)) != 1))) {
            revert TokenTransferFailed(token);
        }
    }
}
