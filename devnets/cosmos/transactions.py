"""Checking and executing transactions as a Cosmos SDK (v0.47 / v0.50) chain does.

``TxProcessor.run(state, tx_bytes, mode)`` decodes a ``TxRaw`` and applies the SDK's ante handler in its
order (messages' ``ValidateBasic``, signature count, timeout height, memo size, gas for the tx size, fee
against the node's minimum gas price (CheckTx only), fee deduction, public keys set and matched to the
signers, signature gas, sequence, signature (SIGN_MODE_DIRECT or LEGACY_AMINO_JSON, single key or
``LegacyAminoPubKey`` multisig), sequence increment), then the messages (bank ``MsgSend``) when
finalizing a block. As in the SDK, a failed ante handler changes nothing, a failed message keeps the
fee and the sequence increment, and CheckTx runs the ante handler only. Errors carry the SDK's code,
codespace ``sdk`` and raw log wording.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import math
from dataclasses import dataclass, field

from cosmpy.protos.cosmos.bank.v1beta1.tx_pb2 import MsgSend
from cosmpy.protos.cosmos.base.abci.v1beta1.abci_pb2 import TxMsgData
from cosmpy.protos.cosmos.crypto.multisig.keys_pb2 import LegacyAminoPubKey
from cosmpy.protos.cosmos.crypto.multisig.v1beta1.multisig_pb2 import (
    MultiSignature,
)
from cosmpy.protos.cosmos.crypto.secp256k1.keys_pb2 import PubKey
from cosmpy.protos.cosmos.tx.signing.v1beta1.signing_pb2 import SignMode
from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import (
    AuthInfo,
    Fee,
    ModeInfo,
    SignDoc,
    TxBody,
    TxRaw,
)
from cosmpy.protos.tendermint.abci.types_pb2 import ExecTxResult
from google.protobuf.any_pb2 import Any as ProtoAny
from google.protobuf.message import DecodeError

from devnets.cosmos.accounts import (
    address_bytes,
    bech32_address,
    module_address,
    secp256k1_address,
    verify_secp256k1,
)
from devnets.cosmos.genesis import GenesisSettings
from devnets.cosmos.multisig import (
    MSG_SEND_TYPE_URL,
    MULTISIG_PUBKEY_TYPE_URL,
    SECP256K1_PUBKEY_TYPE_URL,
    bit_array_bits,
    legacy_amino_sign_bytes,
    multisig_address,
    multisig_member_keys,
)
from devnets.cosmos.state import InsufficientFunds, LedgerState

SDK_CODESPACE = "sdk"
MAX_MEMO_CHARACTERS = 256
TX_SIZE_GAS_PER_BYTE = 10
SECP256K1_VERIFY_GAS = 1000
ACCOUNT_READ_GAS = 1000
FEE_DEDUCTION_GAS = 3000
SEQUENCE_WRITE_GAS = 2500
MSG_SEND_GAS = 12000
MSG_SEND_GAS_PER_COIN = 3000
FEE_COLLECTOR = "fee_collector"


class ExecMode(enum.Enum):
    """Which of the SDK's run modes: CheckTx, simulation, or FinalizeBlock (deliver)."""

    CHECK = "check"
    SIMULATE = "simulate"
    DELIVER = "deliver"


class TxFailure(Exception):
    """A transaction refused with an SDK error: ``code`` in ``codespace``, ``log`` the raw log."""

    def __init__(self, code: int, log: str, codespace: str = SDK_CODESPACE) -> None:
        super().__init__(log)
        self.code = code
        self.log = log
        self.codespace = codespace


@dataclass(frozen=True)
class Event:
    """An ABCI event; every attribute is indexed, as an SDK node with default settings marks them."""

    type: str
    attributes: tuple[tuple[str, str], ...]

    def attribute(self, key: str) -> str | None:
        return next((value for k, value in self.attributes if k == key), None)


@dataclass(frozen=True)
class TxResult:
    """The ``ExecTxResult`` (or CheckTx response) of one transaction."""

    code: int
    codespace: str
    log: str
    data: bytes
    gas_wanted: int
    gas_used: int
    events: tuple[Event, ...] = ()

    def deterministic_bytes(self) -> bytes:
        """``ExecTxResult{code, data, gas_wanted, gas_used}``: a leaf of the next header's last_results_hash."""
        result = ExecTxResult(
            code=self.code, data=self.data, gas_wanted=self.gas_wanted, gas_used=self.gas_used
        )
        return bytes(result.SerializeToString())


@dataclass(frozen=True)
class DecodedTx:
    """A ``TxRaw`` with its body and auth info decoded; ``hash`` is ``sha256(raw)``."""

    raw: bytes
    tx_raw: TxRaw
    body: TxBody
    auth_info: AuthInfo

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.raw).digest()


def decode_tx(raw: bytes) -> DecodedTx:
    """Decode ``TxRaw`` bytes; ``TxFailure`` code 2 (tx parse error) if they are not one."""
    try:
        tx_raw = TxRaw.FromString(raw)
        body = TxBody.FromString(tx_raw.body_bytes)
        auth_info = AuthInfo.FromString(tx_raw.auth_info_bytes)
    except DecodeError as exc:
        raise TxFailure(2, f"{exc}: tx parse error") from exc
    return DecodedTx(raw, tx_raw, body, auth_info)


def coins_string(coins: list[tuple[int, str]]) -> str:
    """The SDK's ``Coins.String()``: ``100uxtst,5ustake``."""
    return ",".join(f"{amount}{denom}" for amount, denom in coins)


class GasMeter:
    """Counts gas against a limit (``None``: no limit, as in simulation)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.consumed = 0

    def consume(self, amount: int, location: str) -> None:
        self.consumed += amount
        if self.limit is not None and self.consumed > self.limit:
            raise TxFailure(
                11,
                f"out of gas in location: {location}; gasWanted: {self.limit}, gasUsed: {self.consumed}: out of gas",
            )


@dataclass
class _Send:
    sender: bytes
    recipient: bytes
    coins: list[tuple[int, str]]
    message: MsgSend


@dataclass
class _Execution:
    events: list[Event] = field(default_factory=list)

    def emit(self, type_: str, *attributes: tuple[str, str]) -> None:
        self.events.append(Event(type_, tuple(attributes)))


class TxProcessor:
    """The ante handler and the bank module of the devnet."""

    def __init__(self, settings: GenesisSettings) -> None:
        self._settings = settings
        self.fee_collector = module_address(FEE_COLLECTOR)

    def _bech32(self, raw: bytes) -> str:
        return bech32_address(raw, self._settings.prefix)

    def run(self, state: LedgerState, raw: bytes, mode: ExecMode, block_height: int) -> TxResult:
        """Check or execute ``raw`` against ``state``, which is updated as the SDK would commit it."""
        try:
            tx = decode_tx(raw)
        except TxFailure as failure:
            return TxResult(failure.code, failure.codespace, failure.log, b"", 0, 0)
        gas_wanted = int(tx.auth_info.fee.gas_limit)
        meter = GasMeter(None if mode is ExecMode.SIMULATE else gas_wanted)
        ante_state = state.copy()
        ante = _Execution()
        try:
            sends = self._ante(ante_state, tx, mode, meter, ante, block_height)
        except TxFailure as failure:
            return TxResult(failure.code, failure.codespace, failure.log, b"", gas_wanted, meter.consumed)
        if mode is ExecMode.CHECK:
            state.__dict__.update(ante_state.__dict__)
            return TxResult(0, "", "", b"", gas_wanted, meter.consumed, tuple(ante.events))
        message_state = ante_state.copy()
        messages = _Execution()
        try:
            for index, send in enumerate(sends):
                self._execute_send(message_state, index, send, meter, messages)
        except TxFailure as failure:
            state.__dict__.update(ante_state.__dict__)
            return TxResult(
                failure.code,
                failure.codespace,
                failure.log,
                b"",
                gas_wanted,
                meter.consumed,
                tuple(ante.events),
            )
        state.__dict__.update(message_state.__dict__)
        responses = []
        for _ in sends:
            response = ProtoAny()
            response.type_url = "/cosmos.bank.v1beta1.MsgSendResponse"
            responses.append(response)
        data = bytes(TxMsgData(msg_responses=responses).SerializeToString())
        return TxResult(0, "", "", data, gas_wanted, meter.consumed, tuple(ante.events + messages.events))

    # ---- messages ------------------------------------------------------------------------------------

    def _decode_send(self, message: ProtoAny) -> _Send:
        if message.type_url != MSG_SEND_TYPE_URL:
            raise TxFailure(2, f"unable to resolve type URL {message.type_url}: tx parse error")
        send = MsgSend.FromString(message.value)
        try:
            sender = address_bytes(send.from_address)
        except ValueError as exc:
            raise TxFailure(7, f"invalid from address: {exc}: invalid address") from exc
        try:
            recipient = address_bytes(send.to_address)
        except ValueError as exc:
            raise TxFailure(7, f"invalid to address: {exc}: invalid address") from exc
        coins = []
        for coin in send.amount:
            if not coin.amount.isdigit() or int(coin.amount) <= 0 or not coin.denom:
                raise TxFailure(10, f"{coin.amount}{coin.denom}: invalid coins")
            coins.append((int(coin.amount), coin.denom))
        if not coins:
            raise TxFailure(10, ": invalid coins")
        return _Send(sender, recipient, coins, send)

    def _execute_send(
        self, state: LedgerState, index: int, send: _Send, meter: GasMeter, out: _Execution
    ) -> None:
        meter.consume(MSG_SEND_GAS + MSG_SEND_GAS_PER_COIN * len(send.coins), "KVStore: bank")
        try:
            state.transfer(send.sender, send.recipient, send.coins)
        except InsufficientFunds as exc:
            raise TxFailure(
                5, f"failed to execute message; message index: {index}: {exc}: insufficient funds"
            ) from exc
        amount = coins_string(send.coins)
        sender, recipient = self._bech32(send.sender), self._bech32(send.recipient)
        out.emit("message", ("action", MSG_SEND_TYPE_URL), ("sender", sender), ("module", "bank"))
        out.emit("coin_spent", ("spender", sender), ("amount", amount))
        out.emit("coin_received", ("receiver", recipient), ("amount", amount))
        out.emit("transfer", ("recipient", recipient), ("sender", sender), ("amount", amount))
        out.emit("message", ("sender", sender))

    # ---- ante handler ----------------------------------------------------------------------------------

    def _ante(
        self, state: LedgerState, tx: DecodedTx, mode: ExecMode, meter: GasMeter, out: _Execution, height: int
    ) -> list[_Send]:
        body, auth_info, signatures = tx.body, tx.auth_info, list(tx.tx_raw.signatures)
        if not body.messages:
            raise TxFailure(18, "must contain at least one message: invalid request")
        sends = [self._decode_send(message) for message in body.messages]
        if not signatures:
            raise TxFailure(15, "no signatures supplied")
        signers: list[bytes] = []
        for send in sends:
            if send.sender not in signers:
                signers.append(send.sender)
        if len(signatures) != len(signers):
            raise TxFailure(
                4, f"wrong number of signatures; expected {len(signers)}, got {len(signatures)}: unauthorized"
            )
        if len(auth_info.signer_infos) != len(signers):
            raise TxFailure(
                4,
                f"wrong number of signers; expected {len(signers)}, got {len(auth_info.signer_infos)}: unauthorized",
            )
        if body.timeout_height and height > body.timeout_height:
            raise TxFailure(
                30, f"block height: {height}, timeout height: {body.timeout_height}: tx timeout height"
            )
        if len(body.memo) > MAX_MEMO_CHARACTERS:
            raise TxFailure(
                12,
                f"maximum number of characters is {MAX_MEMO_CHARACTERS} but received {len(body.memo)} characters: "
                "memo too large",
            )
        meter.consume(TX_SIZE_GAS_PER_BYTE * len(tx.raw), "txSize")
        self._deduct_fee(state, auth_info.fee, signers[0], mode, meter, out)
        self._set_pub_keys(state, tx, signers, meter, out)
        for index, signer in enumerate(signers):
            self._verify_signer(state, tx, index, signer, mode, meter)
        for signer in signers:
            record = state.accounts[signer]
            record.sequence += 1
            meter.consume(SEQUENCE_WRITE_GAS, "WriteFlat")
        return sends

    def _deduct_fee(
        self, state: LedgerState, fee: Fee, payer: bytes, mode: ExecMode, meter: GasMeter, out: _Execution
    ) -> None:
        coins = [(int(coin.amount), coin.denom) for coin in fee.amount if int(coin.amount) > 0]
        if mode is ExecMode.CHECK and self._settings.min_gas_price > 0:
            required = math.ceil(self._settings.min_gas_price * fee.gas_limit)
            paid = sum(amount for amount, denom in coins if denom == self._settings.fee_denom)
            if paid < required:
                raise TxFailure(
                    13,
                    f"insufficient fees; got: {coins_string(coins)} required: {required}{self._settings.fee_denom}: "
                    "insufficient fee",
                )
        payer_name = self._bech32(payer)
        meter.consume(ACCOUNT_READ_GAS, "ReadFlat")
        if state.account(payer) is None:
            raise TxFailure(9, f"fee payer address: {payer_name} does not exist: unknown address")
        if coins:
            meter.consume(FEE_DEDUCTION_GAS, "KVStore: bank")
            try:
                state.transfer(payer, self.fee_collector, coins)
            except InsufficientFunds as exc:
                raise TxFailure(5, f"{exc}: insufficient funds: insufficient funds") from exc
            amount, collector = coins_string(coins), self._bech32(self.fee_collector)
            out.emit("coin_spent", ("spender", payer_name), ("amount", amount))
            out.emit("coin_received", ("receiver", collector), ("amount", amount))
            out.emit("transfer", ("recipient", collector), ("sender", payer_name), ("amount", amount))
            out.emit("message", ("sender", payer_name))
        out.emit("tx", ("fee", coins_string(coins)), ("fee_payer", payer_name))

    def _set_pub_keys(
        self, state: LedgerState, tx: DecodedTx, signers: list[bytes], meter: GasMeter, out: _Execution
    ) -> None:
        for index, signer in enumerate(signers):
            info = tx.auth_info.signer_infos[index]
            name = self._bech32(signer)
            meter.consume(ACCOUNT_READ_GAS, "ReadFlat")
            record = state.account(signer)
            if record is None:
                raise TxFailure(9, f"account {name} does not exist: unknown address")
            if info.HasField("public_key"):
                if pub_key_address(info.public_key) != signer:
                    raise TxFailure(
                        8,
                        f"pubKey does not match signer address {name} with signer index: {index}: invalid pubkey",
                    )
                if not record.pub_key_type_url:
                    record.pub_key_type_url = info.public_key.type_url
                    record.pub_key = bytes(info.public_key.value)
            out.emit("tx", ("acc_seq", f"{name}/{info.sequence}"))
            out.emit("tx", ("signature", base64.b64encode(tx.tx_raw.signatures[index]).decode()))

    def _verify_signer(
        self, state: LedgerState, tx: DecodedTx, index: int, signer: bytes, mode: ExecMode, meter: GasMeter
    ) -> None:
        record = state.accounts[signer]
        info = tx.auth_info.signer_infos[index]
        if not record.pub_key_type_url:
            raise TxFailure(8, "pubkey on account is not set: invalid pubkey")
        signature = bytes(tx.tx_raw.signatures[index])
        if record.pub_key_type_url == MULTISIG_PUBKEY_TYPE_URL:
            multisig = LegacyAminoPubKey.FromString(record.pub_key)
            set_bits = (
                bit_array_bits(info.mode_info.multi.bitarray) if info.mode_info.HasField("multi") else []
            )
            meter.consume(SECP256K1_VERIFY_GAS * sum(set_bits), "ante verify: secp256k1")
        else:
            meter.consume(SECP256K1_VERIFY_GAS, "ante verify: secp256k1")
        if info.sequence != record.sequence:
            raise TxFailure(
                32,
                f"account sequence mismatch, expected {record.sequence}, got {info.sequence}: "
                "incorrect account sequence",
            )
        if mode is ExecMode.SIMULATE:
            return
        if record.pub_key_type_url == MULTISIG_PUBKEY_TYPE_URL:
            valid = self._verify_multisig(
                tx, multisig, info.mode_info, signature, record.number, record.sequence
            )
        else:
            pub_key = bytes(PubKey.FromString(record.pub_key).key)
            valid = verify_secp256k1(
                pub_key, self._sign_bytes(tx, info.mode_info, record.number, record.sequence), signature
            )
        if not valid:
            raise TxFailure(
                4,
                f"signature verification failed; please verify account number ({record.number}), sequence "
                f"({record.sequence}) and chain-id ({self._settings.chain_id}): unauthorized",
            )

    def _sign_bytes(self, tx: DecodedTx, mode_info: ModeInfo, account_number: int, sequence: int) -> bytes:
        mode = mode_info.single.mode if mode_info.HasField("single") else None
        if mode == SignMode.SIGN_MODE_DIRECT:
            doc = SignDoc(
                body_bytes=tx.tx_raw.body_bytes,
                auth_info_bytes=tx.tx_raw.auth_info_bytes,
                chain_id=self._settings.chain_id,
                account_number=account_number,
            )
            return bytes(doc.SerializeToString())
        if mode == SignMode.SIGN_MODE_LEGACY_AMINO_JSON:
            return legacy_amino_sign_bytes(
                chain_id=self._settings.chain_id,
                account_number=account_number,
                sequence=sequence,
                body=tx.body,
                fee=tx.auth_info.fee,
            )
        return b""

    def _verify_multisig(
        self,
        tx: DecodedTx,
        multisig: LegacyAminoPubKey,
        mode_info: ModeInfo,
        signature: bytes,
        account_number: int,
        sequence: int,
    ) -> bool:
        if not mode_info.HasField("multi"):
            return False
        try:
            signatures = list(MultiSignature.FromString(signature).signatures)
            members = multisig_member_keys(multisig)
        except (DecodeError, ValueError):
            return False
        bits = bit_array_bits(mode_info.multi.bitarray)
        chosen = [i for i, bit in enumerate(bits) if bit]
        if len(bits) != len(members) or len(chosen) < multisig.threshold:
            return False
        if len(signatures) != len(chosen) or len(mode_info.multi.mode_infos) != len(chosen):
            return False
        for position, member in enumerate(chosen):
            sign_bytes = self._sign_bytes(tx, mode_info.multi.mode_infos[position], account_number, sequence)
            if not sign_bytes or not verify_secp256k1(members[member], sign_bytes, signatures[position]):
                return False
        return True


def pub_key_address(pub_key: ProtoAny) -> bytes:
    """The address of a public key ``Any``; ``TxFailure`` code 8 for a key type this devnet does not know."""
    try:
        if pub_key.type_url == SECP256K1_PUBKEY_TYPE_URL:
            return secp256k1_address(bytes(PubKey.FromString(pub_key.value).key))
        if pub_key.type_url == MULTISIG_PUBKEY_TYPE_URL:
            return multisig_address(LegacyAminoPubKey.FromString(pub_key.value))
    except (DecodeError, ValueError) as exc:
        raise TxFailure(8, f"{exc}: invalid pubkey") from exc
    raise TxFailure(8, f"unsupported public key type {pub_key.type_url}: invalid pubkey")
