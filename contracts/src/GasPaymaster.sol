// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

/// @title GasOracle
/// @notice What gas costs on each destination, in this (origin) chain's native token: per destination domain, the
///         destination's gas price (its smallest native units per gas), the exchange rate (origin smallest units per
///         destination smallest unit, scaled by 1e10), and a minimum payment per message (the route's USD floor,
///         converted to origin units). Only the updater (the relayer's oracle key) writes it; the owner names the
///         updater. Every write stamps `updatedAt`, so anyone can see a stale oracle.
contract GasOracle {
    uint256 public constant EXCHANGE_RATE_SCALE = 1e10;

    struct RemoteGasData {
        uint128 tokenExchangeRate; // origin smallest units per destination smallest unit, x 1e10
        uint128 gasPrice; // destination smallest units per gas
        uint128 minimumPayment; // origin smallest units per message, whatever the gas
        uint64 updatedAt; // block timestamp of the last write
    }

    address public owner;
    address public updater;
    mapping(uint32 => RemoteGasData) public remoteGasData;

    event RemoteGasDataSet(uint32 indexed domain, uint128 tokenExchangeRate, uint128 gasPrice, uint128 minimumPayment);
    event UpdaterSet(address indexed updater);

    error NotOwner();
    error NotUpdater(address caller);
    error LengthMismatch();
    error NoGasData(uint32 domain);

    constructor(address updater_) {
        owner = msg.sender;
        updater = updater_;
        emit UpdaterSet(updater_);
    }

    function setUpdater(address updater_) external {
        if (msg.sender != owner) revert NotOwner();
        updater = updater_;
        emit UpdaterSet(updater_);
    }

    function setRemoteGasData(
        uint32[] calldata domains,
        uint128[] calldata exchangeRates,
        uint128[] calldata gasPrices,
        uint128[] calldata minimumPayments
    ) external {
        if (msg.sender != updater) revert NotUpdater(msg.sender);
        uint256 n = domains.length;
        if (exchangeRates.length != n || gasPrices.length != n || minimumPayments.length != n) revert LengthMismatch();
        for (uint256 i; i < n; ++i) {
            remoteGasData[domains[i]] =
                RemoteGasData(exchangeRates[i], gasPrices[i], minimumPayments[i], uint64(block.timestamp));
            emit RemoteGasDataSet(domains[i], exchangeRates[i], gasPrices[i], minimumPayments[i]);
        }
    }

    /// @notice Origin smallest units for `gasLimit` gas on `destination`: the gas at the oracle's price and rate,
    ///         at least the destination's minimum payment. Reverts for a destination the oracle never priced.
    function quote(uint32 destination, uint256 gasLimit) public view returns (uint256) {
        RemoteGasData memory d = remoteGasData[destination];
        if (d.updatedAt == 0) revert NoGasData(destination);
        uint256 cost = (gasLimit * d.gasPrice * d.tokenExchangeRate) / EXCHANGE_RATE_SCALE;
        return cost > d.minimumPayment ? cost : d.minimumPayment;
    }
}

/// @title GasPaymaster
/// @notice Where senders pay the relayer for delivering their messages (Hyperlane's interchain gas paymaster):
///         `payForGas` takes at least the oracle's quote for the gas limit, refunds the excess at once, and emits
///         `GasPayment`, which the relayer indexes with the message. Anyone may pay for any message id, any number
///         of times (top-ups add up). What was paid stays here until the beneficiary claims it.
contract GasPaymaster {
    GasOracle public immutable oracle;
    address public beneficiary;
    address public owner;

    event GasPayment(bytes32 indexed messageId, uint32 indexed destination, uint256 gasLimit, uint256 payment);
    event Claimed(address indexed beneficiary, uint256 amount);
    event BeneficiarySet(address indexed beneficiary);

    error NotOwner();
    error InsufficientPayment(uint256 required, uint256 paid);
    error RefundFailed(address refundAddress, uint256 amount);
    error ClaimFailed();

    constructor(GasOracle oracle_, address beneficiary_) {
        oracle = oracle_;
        owner = msg.sender;
        beneficiary = beneficiary_;
        emit BeneficiarySet(beneficiary_);
    }

    function setBeneficiary(address beneficiary_) external {
        if (msg.sender != owner) revert NotOwner();
        beneficiary = beneficiary_;
        emit BeneficiarySet(beneficiary_);
    }

    function quoteGasPayment(uint32 destination, uint256 gasLimit) external view returns (uint256) {
        return oracle.quote(destination, gasLimit);
    }

    function payForGas(bytes32 messageId, uint32 destination, uint256 gasLimit, address refundAddress)
        external
        payable
    {
        uint256 required = oracle.quote(destination, gasLimit);
        if (msg.value < required) revert InsufficientPayment(required, msg.value);
        emit GasPayment(messageId, destination, gasLimit, required);
        uint256 excess = msg.value - required;
        if (excess > 0) {
            (bool ok,) = refundAddress.call{value: excess}("");
            if (!ok) revert RefundFailed(refundAddress, excess);
        }
    }

    /// @notice Sends everything paid so far to the beneficiary (anyone may trigger it; only the beneficiary gains).
    function claim() external {
        uint256 amount = address(this).balance;
        (bool ok,) = beneficiary.call{value: amount}("");
        if (!ok) revert ClaimFailed();
        emit Claimed(beneficiary, amount);
    }
}
