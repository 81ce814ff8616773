"""HTTP front of the devnet: CometBFT's JSON-RPC (``rpc_app``) and the Cosmos REST gateway (``rest_app``).

CometBFT RPC, by URI (``GET /block?height=5``) and by JSON-RPC ``POST /``: ``status``, ``health``,
``genesis``, ``abci_info``, ``block``, ``block_results``, ``commit``, ``validators``, ``tx``,
``tx_search``, ``broadcast_tx_sync``, ``broadcast_tx_async``. Devnet-only, by JSON-RPC ``POST /`` alone and
refused unless the node was started with ``--allow-snapshots`` (``devnets.snapshots``): ``xchain_snapshot``,
``xchain_revert`` (params ``{"id": ...}``).

REST (the paths cosmpy's ``LedgerClient`` uses with ``rest+http://``): auth accounts and params, bank
balances (all / by denom), tx broadcast, tx by hash, txs by event query, simulate, node info, blocks
(latest / by height), consensus params. Bodies are protobuf JSON (``google.protobuf.json_format``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from typing import Any

import structlog
from cosmpy.protos.cosmos.auth.v1beta1.auth_pb2 import BaseAccount
from cosmpy.protos.cosmos.bank.v1beta1 import tx_pb2 as _bank_tx  # noqa: F401
from cosmpy.protos.cosmos.base.abci.v1beta1.abci_pb2 import TxResponse
from cosmpy.protos.cosmos.crypto.multisig import keys_pb2 as _multisig_keys  # noqa: F401
from cosmpy.protos.cosmos.crypto.secp256k1 import keys_pb2 as _secp_keys  # noqa: F401
from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import AuthInfo, Tx, TxBody, TxRaw
from cosmpy.protos.tendermint.abci.types_pb2 import Event as AbciEvent
from cosmpy.protos.tendermint.abci.types_pb2 import EventAttribute
from cosmpy.protos.tendermint.types import block_pb2, types_pb2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from google.protobuf.any_pb2 import Any as ProtoAny
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from devnets import snapshots
from devnets.cosmos.accounts import address_bytes
from devnets.cosmos.blocks import BLOCK_MAX_BYTES, BLOCK_MAX_GAS, StoredBlock
from devnets.cosmos.chain import ChainSnapshot, CosmosChain
from devnets.cosmos.genesis import GenesisSettings, genesis_balances
from devnets.cosmos.transactions import Event, TxResult
from light_clients.tendermint import rpc_json
from light_clients.tendermint.blocks import BlockId, Header, SignedHeader
from light_clients.tendermint.timestamps import format_rfc3339, split_seconds

log = structlog.get_logger(__name__)

COMETBFT_VERSION = "0.38.12"
COSMOS_SDK_VERSION = "v0.50.9"
Json = dict[str, Any]


class RpcError(Exception):
    """A JSON-RPC error as CometBFT reports it (code -32603 "Internal error" with ``data``, HTTP 500)."""

    def __init__(
        self, data: str, code: int = -32603, message: str = "Internal error", status: int = 500
    ) -> None:
        super().__init__(data)
        self.code, self.message, self.data, self.status = code, message, data, status


def _proto_json(message: Message) -> Json:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _hex(data: bytes) -> str:
    return data.hex().upper()


# ---- CometBFT RPC --------------------------------------------------------------------------------------


def events_json(events: tuple[Event, ...]) -> list[Json]:
    return [
        {"type": e.type, "attributes": [{"key": k, "value": v, "index": True} for k, v in e.attributes]}
        for e in events
    ]


def tx_result_json(result: TxResult) -> Json:
    return {
        "code": result.code,
        "data": base64.b64encode(result.data).decode() if result.data else None,
        "log": result.log,
        "info": "",
        "gas_wanted": str(result.gas_wanted),
        "gas_used": str(result.gas_used),
        "events": events_json(result.events),
        "codespace": result.codespace,
    }


def _empty_commit_json() -> Json:
    return {"height": "0", "round": 0, "block_id": rpc_json.block_id_to_json(BlockId()), "signatures": []}


class CometRpc:
    """The CometBFT RPC methods over a chain, and the devnet-only ``xchain_snapshot`` / ``xchain_revert``
    (``devnets.snapshots``: JSON-RPC ``POST /`` only; refused unless ``allow_snapshots``)."""

    def __init__(self, chain: CosmosChain, *, allow_snapshots: bool = False) -> None:
        self.chain = chain
        self.allow_snapshots = allow_snapshots
        self.snapshots: snapshots.SnapshotBook[ChainSnapshot] = snapshots.SnapshotBook()
        self.methods: dict[str, Callable[[dict[str, Any]], Json]] = {
            "status": self.status,
            "health": lambda params: {},
            "genesis": self.genesis,
            "abci_info": self.abci_info,
            "block": self.block,
            "block_results": self.block_results,
            "commit": self.commit,
            "validators": self.validators,
            "tx": self.tx,
            "tx_search": self.tx_search,
            "broadcast_tx_sync": self.broadcast_tx_sync,
            "broadcast_tx_async": self.broadcast_tx_sync,
            snapshots.SNAPSHOT: self.xchain_snapshot,
            snapshots.REVERT: self.xchain_revert,
        }

    def _height(self, params: dict[str, Any]) -> StoredBlock:
        raw = params.get("height")
        latest = self.chain.height
        height = latest if raw in (None, "", "0", 0) else int(str(raw).strip('"'))
        if height <= 0:
            raise RpcError(f"height must be greater than 0, but got {height}")
        if height > latest:
            raise RpcError(
                f"height {height} must be less than or equal to the current blockchain height {latest}"
            )
        block = self.chain.block(height)
        assert block is not None
        return block

    def status(self, params: dict[str, Any]) -> Json:
        latest = self.chain.blocks[-1] if self.chain.blocks else None
        first = self.chain.blocks[0] if self.chain.blocks else None
        proposer = self.chain.validator_set.validators[0]
        return {
            "node_info": {
                "protocol_version": {"p2p": "8", "block": "11", "app": "0"},
                "id": hashlib.sha256(self.chain.settings.chain_id.encode()).hexdigest()[:40],
                "listen_addr": "tcp://127.0.0.1:26656",
                "network": self.chain.settings.chain_id,
                "version": COMETBFT_VERSION,
                "channels": "40202122233038606100",
                "moniker": "xchain-devnet",
                "other": {"tx_index": "on", "rpc_address": "tcp://127.0.0.1:26657"},
            },
            "sync_info": {
                "latest_block_hash": _hex(latest.block_id.hash) if latest else "",
                "latest_app_hash": _hex(self.chain.state.app_hash()),
                "latest_block_height": str(self.chain.height),
                "latest_block_time": format_rfc3339(latest.header.time) if latest else "",
                "earliest_block_hash": _hex(first.block_id.hash) if first else "",
                "earliest_app_hash": _hex(first.header.app_hash) if first else "",
                "earliest_block_height": "1" if first else "0",
                "earliest_block_time": format_rfc3339(first.header.time) if first else "",
                "catching_up": False,
            },
            "validator_info": {
                "address": _hex(proposer.address),
                "pub_key": {
                    "type": rpc_json.ED25519_KEY_TYPE,
                    "value": base64.b64encode(proposer.pub_key).decode(),
                },
                "voting_power": str(proposer.voting_power),
            },
        }

    def genesis(self, params: dict[str, Any]) -> Json:
        settings = self.chain.settings
        return {
            "genesis": {
                "genesis_time": format_rfc3339(self.chain.genesis_time),
                "chain_id": settings.chain_id,
                "initial_height": "1",
                "validators": [
                    {**rpc_json.validator_to_json(v), "power": str(v.voting_power), "name": f"validator-{i}"}
                    for i, v in enumerate(self.chain.validator_set.validators)
                ],
                "app_hash": _hex(self.chain.genesis_app_hash),
                "app_state": {"bank": _genesis_bank(settings)},
            }
        }

    def abci_info(self, params: dict[str, Any]) -> Json:
        return {
            "response": {
                "data": "xchain-devnet",
                "version": COSMOS_SDK_VERSION,
                "last_block_height": str(self.chain.height),
                "last_block_app_hash": base64.b64encode(self.chain.state.app_hash()).decode(),
            }
        }

    def block(self, params: dict[str, Any]) -> Json:
        block = self._height(params)
        return {
            "block_id": rpc_json.block_id_to_json(block.block_id),
            "block": {
                "header": rpc_json.header_to_json(block.header),
                "data": {"txs": [base64.b64encode(tx).decode() for tx in block.txs]},
                "evidence": {"evidence": []},
                "last_commit": rpc_json.commit_to_json(block.last_commit)
                if block.last_commit
                else _empty_commit_json(),
            },
        }

    def block_results(self, params: dict[str, Any]) -> Json:
        block = self._height(params)
        after = self.chain.block(block.height + 1)
        return {
            "height": str(block.height),
            "txs_results": [tx_result_json(r) for r in block.results] or None,
            "finalize_block_events": [],
            "validator_updates": None,
            "consensus_param_updates": None,
            "app_hash": base64.b64encode(
                after.header.app_hash if after else self.chain.state.app_hash()
            ).decode(),
        }

    def commit(self, params: dict[str, Any]) -> Json:
        block = self._height(params)
        return rpc_json.commit_response_json(
            SignedHeader(block.header, block.commit), canonical=block.height < self.chain.height
        )

    def validators(self, params: dict[str, Any]) -> Json:
        block = self._height(params)
        return rpc_json.validators_response_json(self.chain.validator_set, block.height)

    def _tx_json(self, block: StoredBlock, index: int) -> Json:
        raw = block.txs[index]
        return {
            "hash": _hex(hashlib.sha256(raw).digest()),
            "height": str(block.height),
            "index": index,
            "tx_result": tx_result_json(block.results[index]),
            "tx": base64.b64encode(raw).decode(),
        }

    def tx(self, params: dict[str, Any]) -> Json:
        tx_hash = _bytes_param(params.get("hash", ""))
        found = self.chain.find_tx(tx_hash)
        if found is None:
            raise RpcError(f"tx ({_hex(tx_hash)}) not found")
        return self._tx_json(*found)

    def tx_search(self, params: dict[str, Any]) -> Json:
        query = str(params.get("query", "")).strip()
        if query.startswith('"') and query.endswith('"'):
            query = query[1:-1]
        matches = search_txs(self.chain, query)
        if str(params.get("order_by", "")).strip('"') == "desc":
            matches.reverse()
        page = int(str(params.get("page") or 1).strip('"'))
        per_page = min(int(str(params.get("per_page") or 30).strip('"')), 100)
        selected = matches[(page - 1) * per_page : page * per_page]
        return {
            "txs": [self._tx_json(block, index) for block, index in selected],
            "total_count": str(len(matches)),
        }

    def broadcast_tx_sync(self, params: dict[str, Any]) -> Json:
        raw = _bytes_param(params.get("tx", ""))
        result = self.chain.check_tx(raw)
        if result.code == 19:
            raise RpcError("tx already exists in cache")
        return {
            "code": result.code,
            "data": "",
            "log": result.log,
            "codespace": result.codespace,
            "hash": _hex(hashlib.sha256(raw).digest()),
        }

    def _refuse_unless_allowed(self, method: str) -> None:
        if not self.allow_snapshots:
            raise RpcError(
                snapshots.refusal(method), code=snapshots.REFUSED_CODE, message="Snapshots not enabled", status=403
            )

    def xchain_snapshot(self, params: dict[str, Any]) -> Json:
        """The chain as it is now, kept in this process: ``{"id": "0x..", "height": ".."}``."""
        self._refuse_unless_allowed(snapshots.SNAPSHOT)
        snapshot_id = self.snapshots.add(self.chain.snapshot())
        log.info("cosmos_devnet_snapshot", id=snapshot_id, height=self.chain.height)
        return {"id": snapshot_id, "height": str(self.chain.height)}

    def xchain_revert(self, params: dict[str, Any]) -> Json:
        """``{"id": "0x.."}``: the chain back to that snapshot, in place: ``{"reverted": true, "height": ".."}``.
        The snapshot stays (revert to it again); the ones taken after it are discarded."""
        self._refuse_unless_allowed(snapshots.REVERT)
        try:
            snapshot = self.snapshots.revert_to(params.get("id"))
        except snapshots.SnapshotError as exc:
            raise RpcError(str(exc), code=-32602, message="Invalid params") from exc
        self.chain.revert(snapshot)
        return {"reverted": True, "height": str(self.chain.height)}


def _genesis_bank(settings: GenesisSettings) -> Json:
    """The bank module's genesis as the SDK exports it: every balance (sorted by address) and the supply."""
    balances = genesis_balances(settings)
    supply: dict[str, int] = {}
    for coins in balances.values():
        for denom, amount in coins.items():
            supply[denom] = supply.get(denom, 0) + amount
    return {
        "balances": [
            {"address": address, "coins": [{"denom": d, "amount": str(a)} for d, a in sorted(coins.items()) if a]}
            for address, coins in sorted(balances.items())
        ],
        "supply": [{"denom": d, "amount": str(a)} for d, a in sorted(supply.items())],
    }


def _bytes_param(value: object) -> bytes:
    """``0x``-hex (URI form) or base64 (JSON-RPC form), quotes allowed."""
    text = str(value).strip().strip('"')
    if text.startswith(("0x", "0X")):
        return bytes.fromhex(text[2:])
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RpcError(f"invalid bytes parameter {text!r}", code=-32602, message="Invalid params") from exc


_CONDITION = re.compile(
    r"\s*([\w.\-]+)\s*(<=|>=|=|<|>|CONTAINS)\s*('[^']*'|\"[^\"]*\"|[^\s]+)\s*", re.IGNORECASE
)


def search_txs(chain: CosmosChain, query: str) -> list[tuple[StoredBlock, int]]:
    """Txs matching a CometBFT query of ``AND``-joined conditions on ``tx.height``, ``tx.hash`` and
    ``type.attribute`` event keys (``=``, ``<``, ``<=``, ``>``, ``>=``, ``CONTAINS``), in height order."""
    conditions = []
    for part in re.split(r"\s+AND\s+", query.strip(), flags=re.IGNORECASE) if query.strip() else []:
        match = _CONDITION.fullmatch(part)
        if match is None:
            raise RpcError(f"invalid query {query!r}")
        key, op, value = match.group(1), match.group(2).upper(), match.group(3).strip("'\"")
        conditions.append((key, op, value))
    found = []
    for block in chain.blocks:
        for index, raw in enumerate(block.txs):
            values: dict[str, list[str]] = {
                "tx.height": [str(block.height)],
                "tx.hash": [_hex(hashlib.sha256(raw).digest())],
            }
            for event in block.results[index].events:
                for key, value in event.attributes:
                    values.setdefault(f"{event.type}.{key}", []).append(value)
            if all(any(_compare(v, op, want) for v in values.get(key, [])) for key, op, want in conditions):
                found.append((block, index))
    return found


def _compare(have: str, op: str, want: str) -> bool:
    if op == "=":
        return have == want
    if op == "CONTAINS":
        return want in have
    try:
        left, right = int(have), int(want)
    except ValueError:
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def rpc_app(chain: CosmosChain, *, allow_snapshots: bool = False) -> FastAPI:
    """CometBFT RPC: ``GET /<method>?<params>`` and JSON-RPC ``POST /``. ``xchain_snapshot`` / ``xchain_revert``
    (served only with ``allow_snapshots``) change the chain: JSON-RPC ``POST /`` only, never a GET."""
    rpc = CometRpc(chain, allow_snapshots=allow_snapshots)
    app = FastAPI(title="xchain cosmos devnet rpc")

    def respond(request_id: object, method: str, params: dict[str, Any]) -> JSONResponse:
        handler = rpc.methods.get(method)
        if handler is None:
            error = {"code": -32601, "message": "Method not found", "data": ""}
            return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error})
        try:
            return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": handler(params)})
        except RpcError as exc:
            error = {"code": exc.code, "message": exc.message, "data": exc.data}
            return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error}, status_code=exc.status)
        except (ValueError, KeyError) as exc:
            error = {"code": -32602, "message": "Invalid params", "data": str(exc)}
            return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error}, status_code=500)

    @app.post("/")
    async def json_rpc(request: Request) -> JSONResponse:
        body = await request.json()
        params = body.get("params") or {}
        return respond(
            body.get("id", -1), str(body.get("method", "")), params if isinstance(params, dict) else {}
        )

    @app.get("/{method}")
    async def uri_rpc(method: str, request: Request) -> JSONResponse:
        if method in snapshots.METHODS:
            if not rpc.allow_snapshots:
                return respond(-1, method, {})  # the refusal, which says why
            error = {"code": -32600, "message": "Invalid request", "data": f"{method} is JSON-RPC POST / only"}
            return JSONResponse({"jsonrpc": "2.0", "id": -1, "error": error}, status_code=405)
        return respond(-1, method, dict(request.query_params))

    return app


# ---- Cosmos REST -----------------------------------------------------------------------------------------


def _grpc_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "details": []}, status_code=status)


def _abci_events(events: tuple[Event, ...]) -> list[AbciEvent]:
    return [
        AbciEvent(
            type=e.type, attributes=[EventAttribute(key=k, value=v, index=True) for k, v in e.attributes]
        )
        for e in events
    ]


def decoded_tx(raw: bytes) -> Tx:
    tx_raw = TxRaw.FromString(raw)
    return Tx(
        body=TxBody.FromString(tx_raw.body_bytes),
        auth_info=AuthInfo.FromString(tx_raw.auth_info_bytes),
        signatures=list(tx_raw.signatures),
    )


def _timestamp(unix_nanos: int) -> Timestamp:
    seconds, nanos = split_seconds(unix_nanos)
    return Timestamp(seconds=seconds, nanos=nanos)


def _proto_block_id(block_id: BlockId) -> types_pb2.BlockID:
    return types_pb2.BlockID(
        hash=block_id.hash,
        part_set_header=types_pb2.PartSetHeader(
            total=block_id.part_set_header.total, hash=block_id.part_set_header.hash
        ),
    )


def _proto_header(header: Header) -> types_pb2.Header:
    from cosmpy.protos.tendermint.version.types_pb2 import Consensus

    return types_pb2.Header(
        version=Consensus(block=header.version.block, app=header.version.app),
        chain_id=header.chain_id,
        height=header.height,
        time=_timestamp(header.time),
        last_block_id=_proto_block_id(header.last_block_id),
        last_commit_hash=header.last_commit_hash,
        data_hash=header.data_hash,
        validators_hash=header.validators_hash,
        next_validators_hash=header.next_validators_hash,
        consensus_hash=header.consensus_hash,
        app_hash=header.app_hash,
        last_results_hash=header.last_results_hash,
        evidence_hash=header.evidence_hash,
        proposer_address=header.proposer_address,
    )


def rest_app(chain: CosmosChain) -> FastAPI:
    """The Cosmos REST gateway routes cosmpy uses."""
    app = FastAPI(title="xchain cosmos devnet rest")
    settings = chain.settings

    def tx_response(raw: bytes, result: TxResult, block: StoredBlock | None) -> TxResponse:
        response = TxResponse(
            height=block.height if block else 0,
            txhash=_hex(hashlib.sha256(raw).digest()),
            codespace=result.codespace,
            code=result.code,
            data=_hex(result.data),
            raw_log=result.log,
            gas_wanted=result.gas_wanted,
            gas_used=result.gas_used,
            timestamp=format_rfc3339(block.header.time) if block else "",
            events=_abci_events(result.events),
        )
        if block is not None:
            packed = ProtoAny()
            packed.Pack(decoded_tx(raw), type_url_prefix="/")
            response.tx.CopyFrom(packed)
        return response

    @app.get("/cosmos/auth/v1beta1/accounts/{address}")
    async def account(address: str) -> JSONResponse:
        try:
            raw = address_bytes(address)
        except ValueError:
            return _grpc_error(400, 3, f"invalid address {address}: invalid address")
        record = chain.state.account(raw)
        if record is None:
            return _grpc_error(404, 5, f"account {address} not found: key not found")
        base = BaseAccount(address=address, account_number=record.number, sequence=record.sequence)
        if record.pub_key_type_url:
            base.pub_key.CopyFrom(ProtoAny(type_url=record.pub_key_type_url, value=record.pub_key))
        packed = ProtoAny()
        packed.Pack(base, type_url_prefix="/")
        out = _proto_json(base)
        return JSONResponse({"account": {"@type": packed.type_url, **out}})

    @app.get("/cosmos/auth/v1beta1/params")
    async def auth_params() -> Json:
        return {
            "params": {
                "max_memo_characters": "256",
                "tx_sig_limit": "7",
                "tx_size_cost_per_byte": "10",
                "sig_verify_cost_ed25519": "590",
                "sig_verify_cost_secp256k1": "1000",
            }
        }

    def coins_of(address: bytes) -> list[Json]:
        balances = chain.state.balances.get(address, {})
        return [{"denom": d, "amount": str(a)} for d, a in sorted(balances.items()) if a > 0]

    @app.get("/cosmos/bank/v1beta1/balances/{address}")
    async def all_balances(address: str) -> JSONResponse:
        try:
            coins = coins_of(address_bytes(address))
        except ValueError:
            return _grpc_error(400, 3, f"invalid address {address}: invalid address")
        return JSONResponse({"balances": coins, "pagination": {"next_key": None, "total": str(len(coins))}})

    @app.get("/cosmos/bank/v1beta1/balances/{address}/by_denom")
    async def balance_by_denom(address: str, denom: str) -> JSONResponse:
        try:
            amount = chain.state.balance(address_bytes(address), denom)
        except ValueError:
            return _grpc_error(400, 3, f"invalid address {address}: invalid address")
        return JSONResponse({"balance": {"denom": denom, "amount": str(amount)}})

    @app.get("/cosmos/bank/v1beta1/supply/by_denom")
    async def supply_of(denom: str) -> Json:
        """The total of ``denom`` over every account (the devnet mints and burns nothing after genesis)."""
        total = sum(coins.get(denom, 0) for coins in chain.state.balances.values())
        return {"amount": {"denom": denom, "amount": str(total)}}

    @app.post("/cosmos/tx/v1beta1/txs")
    async def broadcast(request: Request) -> JSONResponse:
        body = await request.json()
        encoded = body.get("tx_bytes") or body.get("txBytes") or ""
        mode = str(body.get("mode", "BROADCAST_MODE_SYNC"))
        if mode not in ("BROADCAST_MODE_SYNC", "BROADCAST_MODE_ASYNC", "2", "3"):
            return _grpc_error(400, 3, f"unsupported broadcast mode {mode}; supported: sync, async")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return _grpc_error(400, 3, "invalid tx_bytes: not base64")
        result = chain.check_tx(raw)
        return JSONResponse({"tx_response": _proto_json(tx_response(raw, result, None))})

    @app.get("/cosmos/tx/v1beta1/txs/{tx_hash}")
    async def get_tx(tx_hash: str) -> JSONResponse:
        try:
            found = chain.find_tx(bytes.fromhex(tx_hash))
        except ValueError:
            return _grpc_error(400, 3, f"invalid tx hash {tx_hash}")
        if found is None:
            return _grpc_error(404, 5, f"tx not found: {tx_hash}")
        block, index = found
        raw = block.txs[index]
        return JSONResponse(
            {
                "tx": _proto_json(decoded_tx(raw)),
                "tx_response": _proto_json(tx_response(raw, block.results[index], block)),
            }
        )

    @app.get("/cosmos/tx/v1beta1/txs")
    async def txs_by_events(request: Request) -> JSONResponse:
        conditions = request.query_params.getlist("events")
        if request.query_params.get("query"):
            conditions.append(request.query_params["query"])
        try:
            matches = search_txs(chain, " AND ".join(conditions))
        except RpcError as exc:
            return _grpc_error(400, 3, exc.data)
        responses = [tx_response(b.txs[i], b.results[i], b) for b, i in matches]
        return JSONResponse(
            {
                "txs": [_proto_json(decoded_tx(b.txs[i])) for b, i in matches],
                "tx_responses": [_proto_json(r) for r in responses],
                "pagination": None,
                "total": str(len(matches)),
            }
        )

    @app.post("/cosmos/tx/v1beta1/simulate")
    async def simulate(request: Request) -> JSONResponse:
        body = await request.json()
        encoded = body.get("tx_bytes") or body.get("txBytes")
        try:
            if encoded:
                raw = base64.b64decode(encoded, validate=True)
            else:
                tx = ParseDict(body.get("tx") or {}, Tx())
                raw = TxRaw(
                    body_bytes=tx.body.SerializeToString(),
                    auth_info_bytes=tx.auth_info.SerializeToString(),
                    signatures=list(tx.signatures),
                ).SerializeToString()
        except (ParseError, binascii.Error, ValueError) as exc:
            return _grpc_error(400, 3, f"invalid tx: {exc}")
        result = chain.simulate(raw)
        if result.code != 0:
            return _grpc_error(400, 3, f"{result.log}: invalid request")
        return JSONResponse(
            {
                "gas_info": {"gas_wanted": str(result.gas_wanted), "gas_used": str(result.gas_used)},
                "result": {"data": "", "log": "", "events": [], "msg_responses": []},
            }
        )

    @app.get("/cosmos/base/tendermint/v1beta1/node_info")
    async def node_info() -> Json:
        return {
            "default_node_info": {
                "protocol_version": {"p2p": "8", "block": "11", "app": "0"},
                "default_node_id": hashlib.sha256(settings.chain_id.encode()).hexdigest()[:40],
                "listen_addr": "tcp://127.0.0.1:26656",
                "network": settings.chain_id,
                "version": COMETBFT_VERSION,
                "channels": "QCAhIiMwOGBhAA==",
                "moniker": "xchain-devnet",
                "other": {"tx_index": "on", "rpc_address": "tcp://127.0.0.1:26657"},
            },
            "application_version": {
                "name": "xchain-devnet",
                "app_name": "xchaind",
                "version": "0.1.0",
                "git_commit": "",
                "build_tags": "",
                "go_version": "",
                "build_deps": [],
                "cosmos_sdk_version": COSMOS_SDK_VERSION,
            },
        }

    def block_json(block: StoredBlock | None) -> JSONResponse:
        if block is None:
            return _grpc_error(
                400, 3, "requested block height is bigger then the chain length: invalid request"
            )
        proto = block_pb2.Block(
            header=_proto_header(block.header),
            data=types_pb2.Data(txs=list(block.txs)),
        )
        return JSONResponse(
            {"block_id": _proto_json(_proto_block_id(block.block_id)), "block": _proto_json(proto)}
        )

    @app.get("/cosmos/base/tendermint/v1beta1/blocks/latest")
    async def latest_block() -> JSONResponse:
        return block_json(chain.block(chain.height))

    @app.get("/cosmos/base/tendermint/v1beta1/blocks/{height}")
    async def block_by_height(height: int) -> JSONResponse:
        return block_json(chain.block(height))

    @app.get("/cosmos/consensus/v1/params")
    async def consensus_params() -> Json:
        return {
            "params": {
                "block": {"max_bytes": str(BLOCK_MAX_BYTES), "max_gas": str(BLOCK_MAX_GAS)},
                "evidence": {
                    "max_age_num_blocks": "100000",
                    "max_age_duration": "172800s",
                    "max_bytes": "1048576",
                },
                "validator": {"pub_key_types": ["ed25519"]},
                "version": {"app": "0"},
            }
        }

    return app
