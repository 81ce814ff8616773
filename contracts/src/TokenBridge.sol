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

    event RemoteEnrolled(uint32 indexed domain, bytes32 bridge);
    event WrappedCreated(uint32 indexed homeDomain, bytes32 indexed homeToken, address token);
    event SentTransferRemote(bytes32 indexed id, uint32 indexed destination, bytes32 recipient, uint256 amount);
    event ReceivedTransferRemote(uint32 indexed origin, bytes32 indexed recipient, uint256 amount);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event RouteEnrolled(uint32 indexed destination, address indexed token, uint128 scale, uint128 maxAmount);
    event RouteRemoved(uint32 indexed destination, address indexed token);

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
        if (homeDomain == localDomain) {
            _call(address(uint160(uint256(homeToken))), abi.encodeCall(IERC20Minimal.transfer, (to, amount)));
        } else {
            address token = wrappedToken[homeDomain][homeToken];
            if (token == address(0)) revert UnknownToken(homeDomain, homeToken);
            WrappedToken(token).mint(to, amount);
        }
        emit ReceivedTransferRemote(origin, recipient, amount);
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
