import json

import pytest
from eth_account import Account

from adapters.keys import resolve_private_key
from config.errors import ConfigError
from config.settings import SignerSettings
from relayer.cli.commands import main
from relayer.store import Store
from tests.fakes.chain import FakeChain
from tests.unit.test_config import EXAMPLE

KEY = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"  # public anvil devnet test key


def test_keystore_round_trip_and_wrong_password(tmp_path):
    path = tmp_path / "validator.json"
    path.write_text(json.dumps(Account.encrypt(KEY, "correct horse", iterations=2)))
    signer = SignerSettings(keystore=str(path), password_env="VK_PASS")
    assert resolve_private_key(signer, where="validator.keys[0]", env={"VK_PASS": "correct horse"}) == KEY
    with pytest.raises(ConfigError) as err:
        resolve_private_key(signer, where="validator.keys[0]", env={"VK_PASS": "wrong"})
    assert err.value.path == "validator.keys[0].keystore" and "wrong password" in str(err.value)
    assert KEY[2:] not in str(err.value)


def test_exactly_one_key_source():
    with pytest.raises(ValueError, match="exactly one"):
        SignerSettings(private_key_env="A", keystore="b.json", password_env="P")
    with pytest.raises(ValueError, match="password_env"):
        SignerSettings(keystore="b.json")


def test_messages_list_show_retry(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("RELAYER_STORE_URL", url)
    store = Store(url)
    origin = FakeChain("l1", 1000)
    found = [origin.dispatch(2000, b"a"), origin.dispatch(4242, b"b")]
    store.record_dispatched(found, cursor=("index:1000", 2), known_destinations={1000, 2000})
    store.close()
    assert main(["messages", "list", "-c", str(EXAMPLE), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["state"] for r in rows} == {"DISPATCHED", "DROPPED"}
    dropped = next(r for r in rows if r["state"] == "DROPPED")
    assert dropped["last_reason"] == "unknown_destination" and dropped["destination"] == "4242"

    assert main(["messages", "show", found[0].tx_hash, "-c", str(EXAMPLE), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.splitlines()[0])
    assert shown["origin"] == "l1" and shown["destination"] == "rollup_a"

    assert main(["messages", "retry", dropped["id"], "-c", str(EXAMPLE)]) == 0
    assert "DISPATCHED" in capsys.readouterr().out
    assert main(["messages", "show", "0x" + "00" * 32, "-c", str(EXAMPLE)]) == 2
    assert "no message" in capsys.readouterr().err
    assert main(["messages", "show", "nonsense", "-c", str(EXAMPLE)]) == 2
