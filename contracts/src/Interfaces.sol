// SPDX-License-Identifier: MIT
pragma solidity ^0.8.30;

interface IMessageRecipient {
    function handle(uint32 origin, bytes32 sender, bytes calldata body) external;
}

interface IInterchainSecurityModule {
    /// @dev metadata = abi.encode(bytes32 originMailbox, bytes32 root, uint32 index, bytes signatures, bytes32[32] proof)
    function verify(bytes calldata metadata, bytes calldata message) external view returns (bool);

    /// @dev checkpoint = abi.encode(bytes32 originMailbox, bytes32 root, uint32 index, bytes signatures);
    ///      messages from one origin in strictly increasing nonce order, all within the checkpoint;
    ///      proof = their Merkle multiproof against the root (adapters.merkle.multiproof)
    function verifyBatch(bytes calldata checkpoint, bytes[] calldata messages, bytes32[] calldata proof)
        external
        view
        returns (bool);
}

interface IMailbox {
    function localDomain() external view returns (uint32);
    function dispatch(uint32 destination, bytes32 recipient, bytes calldata body) external returns (bytes32);
}

interface IERC20Minimal {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}
