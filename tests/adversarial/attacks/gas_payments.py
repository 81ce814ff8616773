"""Paid delivery (issue 15): the attacker wants its messages delivered without paying, or the relayer's fees.

It holds no key of the relayer's, the oracle updater's or the deployer's. It tries: writing l1's GasOracle (a price
of 1 wei, no minimum), naming itself the updater or the paymaster's beneficiary, paying less than the quote, paying
for its message on a paymaster of its own (its own oracle, its own price), paying the real paymaster for its message
but naming another destination, and claiming the paymaster's takings. Every write it may not make reverts in a
mined transaction (raw, fixed gas: only the chain decides)."""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode

from adapters.evm import abi
from adapters.evm.contracts import load_artifact
from adapters.message import address_to_bytes32
from tests.adversarial.attacker import AttackerContext
from tests.adversarial.attacks.stuck_funds import _Evm

GAS_AMOUNT = 150_000


def _call(signature: str, types: tuple[str, ...], values: tuple[Any, ...]) -> bytes:
    return abi.selector(signature) + abi_encode(types, values)


def _pay(message_id: bytes, destination: int, gas: int, refund: str) -> bytes:
    return _call("payForGas(bytes32,uint32,uint256,address)", ("bytes32", "uint32", "uint256", "address"),
                 (message_id, destination, gas, refund))


def _set_gas_data(domain: int, rate: int, price: int, minimum: int) -> bytes:
    return _call("setRemoteGasData(uint32[],uint128[],uint128[],uint128[])",
                 ("uint32[]", "uint128[]", "uint128[]", "uint128[]"), ([domain], [rate], [price], [minimum]))


async def _quote(l1: _Evm, paymaster: str, destination: int, gas: int) -> int:
    data = _call("quoteGasPayment(uint32,uint256)", ("uint32", "uint256"), (destination, gas))
    return int(await l1.rpc("eth_call", [{"to": paymaster, "data": "0x" + data.hex()}, "latest"]), 16)


async def _balance(l1: _Evm, address: str) -> int:
    return int(await l1.rpc("eth_getBalance", [address, "latest"]), 16)


async def _own_paymaster(l1: _Evm) -> tuple[str, str]:
    """A GasOracle the attacker updates and a GasPaymaster quoting 1 wei per message from it."""
    oracle = await l1.send(None, bytes.fromhex(load_artifact("GasOracle").bytecode[2:])
                           + abi_encode(("address",), (l1.account.address,)), gas=2_000_000)
    paymaster = await l1.send(None, bytes.fromhex(load_artifact("GasPaymaster").bytecode[2:])
                              + abi_encode(("address", "address"), (oracle["contract"], l1.account.address)),
                              gas=2_000_000)
    return str(paymaster["contract"]), str(oracle["contract"])


async def pay_without_paying(ctx: AttackerContext) -> dict[str, Any]:
    l1 = _Evm(ctx, "l1")
    contracts = ctx.chains["l1"]["contracts"]
    oracle, paymaster, mailbox = contracts["gas_oracle"], contracts["gas_paymaster"], contracts["mailbox"]
    a, b = int(ctx.settings.chains["rollup_a"].domain), int(ctx.settings.chains["rollup_b"].domain)
    me = l1.account.address
    recipient = address_to_bytes32(ctx.chains["rollup_a"]["contracts"]["test_recipient"])
    sent = await l1.send(mailbox, abi.encode_dispatch_batch(a, recipient, [b"delivered for free?"]))
    receipt = await l1.rpc("eth_getTransactionReceipt", [sent["tx"]])
    message_id = bytes.fromhex(next(lg["topics"][1] for lg in receipt["logs"]
                                    if lg["topics"][0] == abi.DISPATCH_TOPIC)[2:])
    quote = await _quote(l1, paymaster, a, GAS_AMOUNT)
    held = await _balance(l1, paymaster)
    cases = {
        "write l1's gas oracle (1 wei per gas, no minimum)": await l1.send(oracle, _set_gas_data(a, 1, 1, 0)),
        "name itself the oracle's updater": await l1.send(oracle, _call("setUpdater(address)", ("address",), (me,))),
        "name itself the paymaster's beneficiary": await l1.send(
            paymaster, _call("setBeneficiary(address)", ("address",), (me,))),
        "pay one wei less than the quote": await l1.send(paymaster, _pay(message_id, a, GAS_AMOUNT, me),
                                                         value=quote - 1),
    }
    held_after_refusals = await _balance(l1, paymaster)
    own, own_oracle = await _own_paymaster(l1)
    await l1.send(own_oracle, _set_gas_data(a, 1, 1, 0))
    fake = await l1.send(own, _pay(message_id, a, GAS_AMOUNT, me), value=10**6)
    wrong = await l1.send(paymaster, _pay(message_id, b, GAS_AMOUNT, me), value=await _quote(l1, paymaster, b,
                                                                                             GAS_AMOUNT))
    before_claim = await _balance(l1, me)
    claim = await l1.send(paymaster, _call("claim()", (), ()))
    return {"message_id": "0x" + message_id.hex(), "quote": quote, "cases": cases, "held_before": held,
            "held_after_refusals": held_after_refusals, "own_paymaster": own, "fake_payment": fake,
            "wrong_destination_payment": wrong, "claim": claim, "attacker_before_claim": before_claim,
            "attacker_after_claim": await _balance(l1, me), "paymaster_after_claim": await _balance(l1, paymaster),
            "last_block": claim["block"]}
