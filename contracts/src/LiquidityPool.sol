// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {IMailbox, IMessageRecipient} from "./Interfaces.sol";
import {PoolToken} from "./PoolToken.sol";

/// @title LiquidityPool
/// @notice A fast route for a token issued natively on several chains (Across / Everclear / CCTP style), one pool
///         per chain. A transfer deposits into the origin's pool, which sends a FILL to the destination's pool; the
///         destination pays the recipient out of its own liquidity when the validators' attested message arrives.
///         No token is minted or burnt per transfer.
///
///         Time is cut into epochs of ``epochSeconds``. Once an epoch is closed, anyone sends, per destination, one
///         SETTLE carrying the epoch's total deposits towards it and their number. The receiving pool completes the
///         settlement once its own epoch is closed and every deposit of the remote's epoch has been delivered here
///         (the counts and totals must match exactly), then nets the two directions: it burns what it gained
///         (deposits here towards the remote) minus what it paid or owes (the remote's deposits delivered here),
///         or mints the difference when negative. For a pair A <-> B one pool burns the net and the other mints it:
///         the supply is conserved and each pool returns to its balance before the epoch, so opposite flows cancel.
///
///         Bodies (abi.encode, four words):
///           FILL   (uint8 1, uint64 epoch, bytes32 recipient, uint256 amount)
///           SETTLE (uint8 2, uint64 epoch, uint256 remoteSent, uint256 remoteCount)
///
///         A FILL is never refused for want of liquidity (the message must be deliverable): a payout the pool
///         cannot cover is deferred, and anyone releases it once the pool holds everything it owes.
contract LiquidityPool is IMessageRecipient {
    uint8 internal constant FILL = 1;
    uint8 internal constant SETTLE = 2;
    uint256 internal constant BODY_LEN = 128;

    enum SettlementStatus {
        None,
        Pending,
        Done
    }

    /// @dev ``remoteSent`` / ``remoteCount``: the remote's deposits towards us in the epoch, as its SETTLE says;
    ///      ``adjusted``: what this pool burnt (> 0) or minted (< 0) when the settlement completed.
    struct Settlement {
        SettlementStatus status;
        uint256 remoteSent;
        uint256 remoteCount;
        int256 adjusted;
    }

    /// @dev ``recipient`` and ``origin`` share one slot.
    struct Deferred {
        address recipient;
        uint32 origin;
        uint256 amount;
    }

    IMailbox public immutable mailbox;
    uint32 public immutable localDomain;
    PoolToken public immutable token;
    uint64 public immutable epochSeconds;
    address public owner;

    mapping(uint32 => bytes32) public remotePool;
    /// @notice destination => epoch => total / number of deposits made here towards it
    mapping(uint32 => mapping(uint64 => uint256)) public sent;
    mapping(uint32 => mapping(uint64 => uint256)) public sentCount;
    /// @notice origin => its epoch => total / number of its deposits delivered here (paid or deferred)
    mapping(uint32 => mapping(uint64 => uint256)) public received;
    mapping(uint32 => mapping(uint64 => uint256)) public receivedCount;
    /// @notice deferred payouts by id (ids start at 1; a released one is deleted)
    mapping(uint256 => Deferred) public deferred;
    uint256 public deferredCount;
    uint256 public deferredTotal;
    /// @notice origin => epoch => the origin's SETTLE as received here
    mapping(uint32 => mapping(uint64 => Settlement)) public settlementIn;
    /// @notice destination => epoch => our SETTLE was sent
    mapping(uint32 => mapping(uint64 => bool)) public settledOut;

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event RemotePoolEnrolled(uint32 indexed domain, bytes32 pool);
    event LiquidityAdded(address indexed provider, uint256 amount);
    event Deposited(bytes32 indexed messageId, uint32 indexed destination, uint64 indexed epoch, bytes32 recipient,
        uint256 amount);
    event FillPaid(uint32 indexed origin, uint64 indexed epoch, address indexed recipient, uint256 amount);
    event FillDeferred(uint256 indexed id, uint32 indexed origin, address indexed recipient, uint256 amount,
        string reason);
    event DeferredReleased(uint256 indexed id, address indexed recipient, uint256 amount);
    event SettlementSent(bytes32 indexed messageId, uint32 indexed destination, uint64 indexed epoch, uint256 sent,
        uint256 count);
    event SettlementReceived(uint32 indexed origin, uint64 indexed epoch, uint256 remoteSent, uint256 remoteCount);
    event SettlementWaiting(uint32 indexed origin, uint64 indexed epoch, string reason);
    event SettlementCompleted(uint32 indexed origin, uint64 indexed epoch, int256 net);

    error NotOwner();
    error NotMailbox();
    error ZeroEpochSeconds();
    error ZeroAmount();
    error InvalidRecipient(bytes32 recipient);
    error NoRemotePool(uint32 domain);
    error UnknownSender(uint32 origin, bytes32 sender);
    error MalformedBody(uint256 length);
    error UnknownKind(uint256 kind);
    error AlreadySettled(uint32 domain, uint64 epoch);
    error EpochOpen(uint64 epoch, uint64 current);
    error NotPending(uint32 origin, uint64 epoch);
    error SettlementMismatch(uint32 origin, uint64 epoch, uint256 remoteSent, uint256 received);
    error NoDeferred(uint256 id);
    error PoolShort(uint256 balance, uint256 owed);
    error TokenTransferFailed();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor(address mailbox_, uint32 localDomain_, address token_, uint64 epochSeconds_) {
        if (epochSeconds_ == 0) revert ZeroEpochSeconds();
        mailbox = IMailbox(mailbox_);
        localDomain = localDomain_;
        token = PoolToken(token_);
        epochSeconds = epochSeconds_;
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function enrollRemotePool(uint32 domain, bytes32 pool) external onlyOwner {
        remotePool[domain] = pool;
        emit RemotePoolEnrolled(domain, pool);
    }

    function currentEpoch() public view returns (uint64) {
        return uint64(block.timestamp / epochSeconds);
    }

    /// @notice The pool's balance not owed to deferred payouts (0 when it owes more than it holds).
    function freeLiquidity() public view returns (uint256) {
        uint256 balance = token.balanceOf(address(this));
        return balance > deferredTotal ? balance - deferredTotal : 0;
    }

    /// @notice Add ``amount`` to the pool (no withdrawal in this version).
    function addLiquidity(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        _pull(amount);
        emit LiquidityAdded(msg.sender, amount);
    }

    // ------------------------------------------------------------------ origin side

    /// @notice Deposit ``amount`` here; the pool of ``destination`` pays it to ``recipient`` (an EVM address,
    ///         left-padded) when the FILL arrives.
    function deposit(uint32 destination, bytes32 recipient, uint256 amount) external returns (bytes32 messageId) {
        bytes32 remote = remotePool[destination];
        if (remote == bytes32(0)) revert NoRemotePool(destination);
        if (amount == 0) revert ZeroAmount();
        if (recipient == bytes32(0) || uint256(recipient) >> 160 != 0) revert InvalidRecipient(recipient);
        _pull(amount);
        uint64 e = currentEpoch();
        sent[destination][e] += amount;
        sentCount[destination][e] += 1;
        messageId = mailbox.dispatch(destination, remote, abi.encode(FILL, e, recipient, amount));
        emit Deposited(messageId, destination, e, recipient, amount);
    }

    /// @notice Send ``destination`` this pool's deposits towards it in the closed ``epoch`` (anyone may call, once;
    ///         also when there were none: it closes the epoch for the other side).
    function settle(uint32 destination, uint64 epoch) external returns (bytes32 messageId) {
        uint64 current = currentEpoch();
        if (epoch >= current) revert EpochOpen(epoch, current);
        if (settledOut[destination][epoch]) revert AlreadySettled(destination, epoch);
        bytes32 remote = remotePool[destination];
        if (remote == bytes32(0)) revert NoRemotePool(destination);
        settledOut[destination][epoch] = true;
        uint256 total = sent[destination][epoch];
        uint256 count = sentCount[destination][epoch];
        messageId = mailbox.dispatch(destination, remote, abi.encode(SETTLE, epoch, total, count));
        emit SettlementSent(messageId, destination, epoch, total, count);
    }

    // ------------------------------------------------------------------ destination side

    function handle(uint32 origin, bytes32 sender, bytes calldata body) external {
        if (msg.sender != address(mailbox)) revert NotMailbox();
        if (sender == bytes32(0) || sender != remotePool[origin]) revert UnknownSender(origin, sender);
        if (body.length != BODY_LEN) revert MalformedBody(body.length);
        uint256 kind = uint256(bytes32(body[:32]));
        if (kind == FILL) {
            (, uint64 epoch, bytes32 recipient, uint256 amount) = abi.decode(body, (uint8, uint64, bytes32, uint256));
            _fill(origin, epoch, recipient, amount);
        } else if (kind == SETTLE) {
            (, uint64 epoch, uint256 remoteSent, uint256 remoteCount) =
                abi.decode(body, (uint8, uint64, uint256, uint256));
            _settlementIn(origin, epoch, remoteSent, remoteCount);
        } else {
            revert UnknownKind(kind);
        }
    }

    /// @notice Retry a pending settlement (after this epoch closed, the deposits arrived or the minter role was
    ///         granted); returns whether it completed. Anyone may call.
    function completeSettlement(uint32 origin, uint64 epoch) external returns (bool done) {
        if (settlementIn[origin][epoch].status != SettlementStatus.Pending) revert NotPending(origin, epoch);
        return _tryComplete(origin, epoch);
    }

    /// @notice Pay deferred payout ``id`` once the pool holds everything it owes (any order; anyone may call).
    function releaseDeferred(uint256 id) external {
        Deferred memory d = deferred[id];
        if (d.amount == 0) revert NoDeferred(id);
        uint256 balance = token.balanceOf(address(this));
        if (balance < deferredTotal) revert PoolShort(balance, deferredTotal);
        delete deferred[id];
        deferredTotal -= d.amount;
        _send(d.recipient, d.amount);
        emit DeferredReleased(id, d.recipient, d.amount);
    }

    function _fill(uint32 origin, uint64 epoch, bytes32 recipient, uint256 amount) internal {
        received[origin][epoch] += amount;
        receivedCount[origin][epoch] += 1;
        address to = address(uint160(uint256(recipient)));
        if (freeLiquidity() >= amount) {
            _send(to, amount);
            emit FillPaid(origin, epoch, to, amount);
            return;
        }
        uint256 id = ++deferredCount;
        deferred[id] = Deferred(to, origin, amount);
        deferredTotal += amount;
        emit FillDeferred(id, origin, to, amount, "pool short");
    }

    function _settlementIn(uint32 origin, uint64 epoch, uint256 remoteSent, uint256 remoteCount) internal {
        Settlement storage s = settlementIn[origin][epoch];
        if (s.status != SettlementStatus.None) revert AlreadySettled(origin, epoch);
        (s.status, s.remoteSent, s.remoteCount) = (SettlementStatus.Pending, remoteSent, remoteCount);
        emit SettlementReceived(origin, epoch, remoteSent, remoteCount);
        _tryComplete(origin, epoch);
    }

    /// @dev Completes the settlement of ``origin``'s ``epoch`` if it can, else emits why it waits (never reverts on
    ///      a wait). Reverts only when every deposit arrived but the totals differ: the SETTLE is not the sum of
    ///      the epoch's flows, which honest messages cannot produce.
    function _tryComplete(uint32 origin, uint64 epoch) internal returns (bool) {
        Settlement storage s = settlementIn[origin][epoch];
        uint256 got = received[origin][epoch];
        uint256 gotCount = receivedCount[origin][epoch];
        if (gotCount > s.remoteCount || (gotCount == s.remoteCount && got != s.remoteSent)) {
            revert SettlementMismatch(origin, epoch, s.remoteSent, got);
        }
        if (epoch >= currentEpoch()) return _wait(origin, epoch, "epoch open here");
        if (gotCount < s.remoteCount) return _wait(origin, epoch, "deposits in flight");
        int256 net = int256(sent[origin][epoch]) - int256(got);
        if (!_adjust(net)) return _wait(origin, epoch, "mint or burn failed");
        (s.status, s.adjusted) = (SettlementStatus.Done, net);
        emit SettlementCompleted(origin, epoch, net);
        return true;
    }

    /// @dev Burns ``net`` (> 0) or mints ``-net`` (< 0) of this pool's own tokens; false if the token refused.
    function _adjust(int256 net) internal returns (bool) {
        if (net > 0) {
            try token.burn(address(this), uint256(net)) {
                return true;
            } catch {
                return false;
            }
        }
        if (net < 0) {
            try token.mint(address(this), uint256(-net)) {
                return true;
            } catch {
                return false;
            }
        }
        return true;
    }

    function _wait(uint32 origin, uint64 epoch, string memory reason) internal returns (bool) {
        emit SettlementWaiting(origin, epoch, reason);
        return false;
    }

    function _pull(uint256 amount) internal {
        if (!token.transferFrom(msg.sender, address(this), amount)) revert TokenTransferFailed();
    }

    function _send(address to, uint256 amount) internal {
        if (!token.transfer(to, amount)) revert TokenTransferFailed();
    }
}
