from importlib.resources import files
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import load_settings
from relayer.cli import main

EXAMPLE = Path(str(files("config") / "examples" / "devnet.toml"))


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_example_config_loads():
    s = load_settings(EXAMPLE, env={})
    assert list(s.chains) == ["l1", "rollup_a", "rollup_b"]
    assert s.chains["l1"].finality == "finalized" and s.chains["rollup_b"].finality == 4
    assert s.security.threshold == 2 and len(s.security.validators) == 3


def test_unknown_key_names_its_path(tmp_path):
    bad = EXAMPLE.read_text().replace("confirmation_depth = 1", "confirmation_dept = 1")
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, bad), env={})
    assert err.value.path == "chains.l1.confirmation_dept"
    assert "unknown key" in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "path", "needle"),
    [
        ('finality = 2', 'finality = "soon"', "chains.rollup_a.finality", "finalized"),
        ('rpc_url = "http://127.0.0.1:8546"', 'rpc_url = "127.0.0.1:8546"', "chains.rollup_a.rpc_url", "http(s) URL"),
        ("threshold = 2", "threshold = 4", "security", "above the 3 validators"),
        ("domain = 3000", "domain = 2000", "", "also the domain of rollup_a"),
        ('mailbox = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\ntoken_bridge = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"\nfinality = 2',
         'mailbox = "0x5FbDB"\nfinality = 2', "chains.rollup_a.mailbox", "20-byte hex address"),
    ],
)
def test_bad_values_fail_with_path_and_expectation(tmp_path, old, new, path, needle):
    text = EXAMPLE.read_text()
    assert old in text
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text.replace(old, new, 1)), env={})
    assert needle in str(err.value)
    if path:
        assert err.value.path == path


def test_env_overrides_then_cli_overrides(tmp_path):
    env = {"RELAYER__CHAINS__L1__RPC_URL": "http://10.0.0.1:9999", "RELAYER__RELAYER__BATCH_SIZE": "50",
           "RELAYER_STORE_URL": "sqlite:////tmp/x.db"}
    s = load_settings(EXAMPLE, env=env, overrides={"relayer.batch_size": 7})
    assert s.chains["l1"].rpc_url == "http://10.0.0.1:9999"
    assert s.relayer.batch_size == 7
    assert s.store.url == "sqlite:////tmp/x.db"


def test_bad_env_override_names_the_key():
    with pytest.raises(ConfigError) as err:
        load_settings(EXAMPLE, env={"RELAYER__RELAYER__BATCH_SIZE": "many"})
    assert err.value.path == "relayer.batch_size"


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[chains\n"), env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_config_check_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RELAYER_ROLLUP_A_KEY", "0x" + "11" * 32)
    monkeypatch.setenv("RELAYER_ROLLUP_B_KEY", "0x" + "22" * 32)
    assert main(["config", "check", str(EXAMPLE)]) == 0
    assert "ok — 3 chains" in capsys.readouterr().out
    monkeypatch.delenv("RELAYER_ROLLUP_B_KEY")
    assert main(["config", "check", str(EXAMPLE)]) == 2
    err = capsys.readouterr().err
    assert "chains.rollup_b.signer.private_key_env" in err and "RELAYER_ROLLUP_B_KEY is not set" in err
    assert "22" * 32 not in err


def test_secret_never_in_error(tmp_path):
    text = EXAMPLE.read_text().replace('signer = { private_key = "0x59c6', 'signer = { private_key = "0xZZ59c6')
    from adapters.keys import resolve_private_key

    s = load_settings(write(tmp_path, text), env={})
    with pytest.raises(ConfigError) as err:
        resolve_private_key(s.chains["l1"].signer, where="chains.l1.signer")
    assert "59c6995e" not in str(err.value)
