from importlib.resources import files
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import load_settings
from relayer.cli.commands import main

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
        (('mailbox = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\n'
          'token_bridge = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"\nfinality = 2'),
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


# ---- relayer identity and the validators' allow-list (relayer/api/relayer_auth.py)

IDENTITY_LINE = 'identity_key = { private_key = "0x13986e078393fca89aedc2ecd014df01dfbff153434c04b2e38cfedcbef710f7" }'
VALIDATOR_KEY = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"  # devnet test key


def test_example_relayer_identity_is_allow_listed():
    from adapters.keys import resolve_private_key
    from relayer.api.relayer_auth import RelayerRequestSigner

    s = load_settings(EXAMPLE, env={})
    assert s.relayer.identity_key is not None and IDENTITY_LINE in EXAMPLE.read_text()
    identity = RelayerRequestSigner(resolve_private_key(s.relayer.identity_key, where="relayer.identity_key"))
    assert identity.address in s.validator.allowed_relayers
    from devnets.devnet import DEVNET_RELAYER_ACCOUNTS, relayer_identity_key

    devnet = [RelayerRequestSigner(relayer_identity_key(i)).address for i in DEVNET_RELAYER_ACCOUNTS]
    assert s.validator.allowed_relayers == devnet  # the example matches what `relayer devnet up` writes
    assert (s.validator.request_max_age_s == 60.0
            and s.validator.anonymous_requests_per_s < s.validator.relayer_requests_per_s)


@pytest.mark.parametrize(("new", "needle"), [
    ('allowed_relayers = ["0x1234"]', "20-byte hex address"),
    ('allowed_relayers = ["0x9586a4833970847aef259ad5bfb7aa8901ddf746", "0x9586A4833970847aef259ad5bfb7aa8901ddf746"]',
     "listed twice"),
])
def test_bad_allowed_relayers_name_the_key(tmp_path, new, needle):
    text = EXAMPLE.read_text()
    old = next(line for line in text.splitlines() if line.startswith("allowed_relayers = "))
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text.replace(old, new)), env={})
    assert err.value.path == "validator.allowed_relayers" and needle in str(err.value)


def test_cosigning_without_an_allow_list_refuses_to_start(tmp_path):
    from relayer.daemon.daemon import build_daemon

    text = EXAMPLE.read_text()
    old = next(line for line in text.splitlines() if line.startswith("allowed_relayers = "))
    keys = ", ".join(f'{{ private_key = "{k}" }}' for k in (VALIDATOR_KEY,) * 3)
    text = text.replace(old, f"cosign_keys.l1 = [{keys}]")
    with pytest.raises(ConfigError) as err:
        build_daemon(load_settings(write(tmp_path, text), env={}), "validator")
    assert err.value.path == "validator.allowed_relayers"


@pytest.mark.parametrize(("new", "needle"), [
    ("", "none is set"),
    (f'identity_key = {{ private_key = "{VALIDATOR_KEY}" }}', "a validator's address"),
    ('identity_key = { private_key_env = "NOPE_IDENTITY" }', "NOPE_IDENTITY is not set"),
])
def test_the_relayer_role_needs_an_identity_of_its_own(tmp_path, new, needle):
    from relayer.daemon.daemon import build_daemon

    text = EXAMPLE.read_text().replace(IDENTITY_LINE, new)
    env = {"RELAYER_ROLLUP_A_KEY": "0x" + "11" * 32, "RELAYER_ROLLUP_B_KEY": "0x" + "22" * 32}
    with pytest.raises(ConfigError) as err:
        build_daemon(load_settings(write(tmp_path, text), env=env), "relayer")
    assert err.value.path.startswith("relayer.identity_key") and needle in str(err.value)
    assert VALIDATOR_KEY[2:] not in str(err.value)
