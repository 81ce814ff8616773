"""EVM gas payments: the ``GasPaymaster`` contract's ``GasPayment`` logs, its ``GasOracle``'s entries, writing the
oracle (the updater key) and paying for a message (``adapters.capabilities.GasPaymaster``)."""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from adapters.base import Height, RpcError
from adapters.capabilities import GasOracleEntry, GasPayment
from adapters.evm import abi
from adapters.evm.chain import evm_boundary, hex_int
from adapters.evm.origin import EvmOrigin
from adapters.evm.sender import EvmSender

GAS_PAYMENT_TOPIC = abi.topic("GasPayment(bytes32,uint32,uint256,uint256)")
_ORACLE = abi.selector("oracle()")
_REMOTE_GAS_DATA = abi.selector("remoteGasData(uint32)")
_SET_REMOTE_GAS_DATA = abi.selector("setRemoteGasData(uint32[],uint128[],uint128[],uint128[])")
_PAY_FOR_GAS = abi.selector("payForGas(bytes32,uint32,uint256,address)")


class EvmGasPaymaster(EvmOrigin, EvmSender):
    """The chain's ``GasPaymaster`` (``chains.<name>.gas_paymaster``) and the ``GasOracle`` it quotes from."""

    _oracle_address: str | None = None

    def has_paymaster(self) -> bool:
        return self._config.gas_paymaster is not None

    def _paymaster(self) -> str:
        if self._config.gas_paymaster is None:
            raise RpcError(f"chains.{self._name}.gas_paymaster is not set", chain=self._name, reason="no paymaster")
        return self._config.gas_paymaster.lower()

    async def _oracle(self) -> str:
        if self._oracle_address is None:
            word = await self._call(self._paymaster(), _ORACLE)
            if len(word) < 32:
                raise RpcError(f"gas paymaster {self._config.gas_paymaster} returned no oracle (no code there?)",
                               chain=self._name, reason="paymaster not deployed")
            self._oracle_address = "0x" + word[12:32].hex()
        return self._oracle_address

    @evm_boundary
    async def fetch_gas_payments(self, from_height: Height, to_height: Height) -> list[GasPayment]:
        if to_height < from_height or not self.has_paymaster():
            return []
        logs = await self._get_logs(GAS_PAYMENT_TOPIC, from_height, to_height, address=self._paymaster())
        return [_payment(lg) for lg in logs]

    @evm_boundary
    async def gas_oracle_entries(self, destinations: Sequence[int]) -> list[GasOracleEntry]:
        oracle = await self._oracle()
        words = await self._eth_calls([(oracle, _REMOTE_GAS_DATA + abi_encode(["uint32"], [d])) for d in destinations])
        entries = []
        for destination, word in zip(destinations, words, strict=True):
            rate, price, minimum, updated = abi_decode(["uint128", "uint128", "uint128", "uint64"], word)
            entries.append(GasOracleEntry(destination, rate, price, minimum, float(updated)))
        return entries

    @evm_boundary
    async def write_gas_oracle(self, updater_key: str, entries: Sequence[GasOracleEntry]) -> str:
        data = _SET_REMOTE_GAS_DATA + abi_encode(
            ["uint32[]", "uint128[]", "uint128[]", "uint128[]"],
            [[e.destination for e in entries], [e.exchange_rate for e in entries], [e.gas_price for e in entries],
             [e.minimum_payment for e in entries]])
        receipt = await self._transact(self._account_for(updater_key), await self._oracle(), data,
                                       "GasOracle.setRemoteGasData")
        return str(receipt["transactionHash"])

    @evm_boundary
    async def pay_for_gas(self, payer_key: str, message_id: bytes, destination: int, gas_limit: int,
                          value: int) -> str:
        account = self._account_for(payer_key)
        data = _pay_data(message_id, destination, gas_limit, account.address)
        receipt = await self._transact(account, self._paymaster(), data, "GasPaymaster.payForGas", value=value)
        return str(receipt["transactionHash"])

    def pay_for_gas_call(self, message_id: bytes, destination: int, gas_limit: int, refund_to: str) -> dict[str, str]:
        return {"to": to_checksum_address(self._paymaster()),
                "data": "0x" + _pay_data(message_id, destination, gas_limit, refund_to).hex()}


def _pay_data(message_id: bytes, destination: int, gas_limit: int, refund_to: str) -> bytes:
    return _PAY_FOR_GAS + abi_encode(["bytes32", "uint32", "uint256", "address"],
                                     [message_id, destination, gas_limit, to_checksum_address(refund_to)])


def _payment(lg: dict) -> GasPayment:
    gas_limit, payment = abi_decode(["uint256", "uint256"], bytes.fromhex(lg["data"][2:]))
    return GasPayment(message_id=bytes.fromhex(lg["topics"][1][2:]), destination=int(lg["topics"][2], 16),
                      gas_limit=gas_limit, payment=payment, height=hex_int(lg["blockNumber"]),
                      tx_hash=lg["transactionHash"], log_index=hex_int(lg["logIndex"]))
