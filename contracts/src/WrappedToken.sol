// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

import {ERC20} from "./ERC20.sol";

/// @notice The bridged representation of a token homed on another domain; only its bridge mints and burns.
contract WrappedToken is ERC20 {
    address public immutable bridge;
    uint32 public immutable homeDomain;
    bytes32 public immutable homeToken;

    error NotBridge();

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint32 homeDomain_, bytes32 homeToken_)
        ERC20(name_, symbol_, decimals_)
    {
        bridge = msg.sender;
        homeDomain = homeDomain_;
        homeToken = homeToken_;
    }

    function mint(address to, uint256 amount) external {
        if (msg.sender != bridge) revert NotBridge();
        _mint(to, amount);
    }

    function burn(address from, uint256 amount) external {
        if (msg.sender != bridge) revert NotBridge();
        _burn(from, amount);
    }
}
