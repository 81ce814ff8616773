// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {ERC20} from "./ERC20.sol";

/// @title PoolToken
/// @notice A token issued natively on several chains (USDC on the devnet): the initial supply goes to the deployer
///         (the owner), who may mint more and name minters. A minter (a LiquidityPool netting its epochs) mints and
///         burns only its own tokens: it may burn what it holds, never anyone else's.
contract PoolToken is ERC20 {
    address public immutable owner;
    mapping(address => bool) public isMinter;

    event MinterSet(address indexed minter, bool allowed);

    error NotOwner();
    error NotMinter();
    error BurnOthers();

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 initialSupply)
        ERC20(name_, symbol_, decimals_)
    {
        owner = msg.sender;
        if (initialSupply > 0) _mint(msg.sender, initialSupply);
    }

    /// @notice Allow or forbid ``minter`` to mint and to burn its own tokens.
    function setMinter(address minter, bool allowed) external {
        if (msg.sender != owner) revert NotOwner();
        isMinter[minter] = allowed;
        emit MinterSet(minter, allowed);
    }

    /// @notice Mint ``amount`` to ``to``: the owner or a minter.
    function mint(address to, uint256 amount) external {
        if (msg.sender != owner && !isMinter[msg.sender]) revert NotMinter();
        _mint(to, amount);
    }

    /// @notice Burn ``amount`` of the caller's own tokens: a minter only, and ``from`` must be the caller.
    function burn(address from, uint256 amount) external {
        if (!isMinter[msg.sender]) revert NotMinter();
        if (from != msg.sender) revert BurnOthers();
        _burn(from, amount);
    }
}
