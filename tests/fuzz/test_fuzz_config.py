"""Config loading never crashes: random TOML documents, random mutations of config/examples/devnet.toml and
junk env overrides give ``Settings`` or a ``ConfigError`` whose message names the key path; never a raw
pydantic ValidationError, KeyError, TypeError, UnicodeDecodeError or tomllib/RecursionError trace.

Crashes found (fixed in config/loader.py, regression tests at the bottom): a config file that is not UTF-8
(UnicodeDecodeError), arrays nested past the TOML parser's depth in the file (RecursionError) or in an env
override value (RecursionError from the scalar parse), a config path that is a directory (IsADirectoryError)."""

from __future__ import annotations

import copy
import json
import sys
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.errors import ConfigError
from config.loader import load_settings, load_settings_dict
from config.settings import Settings

# pydantic validation of a whole Settings is ~1 ms: a third of the tier's examples keeps this file ~10 s
FUZZ = settings(settings.get_profile("fuzz"), max_examples=max(20, settings.get_profile("fuzz").max_examples // 3))
EXAMPLE = Path(str(files("config") / "examples" / "devnet.toml"))
BASE: dict[str, Any] = tomllib.loads(EXAMPLE.read_text())

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=30),
                    st.sampled_from(["http://", "ftp://x", "http://ok:1/", "0x12", "finalized", "", " ", "sqlite:///x"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=8)
keys = st.sampled_from(["chains", "security", "validator", "relayer", "store", "api", "router", "log", "l1", "rpc_url",
                        "domain", "family", "gas", "tokens", "url", "threshold", "validators", "max_body_bytes",
                        "signer", "finality", "bogus"]) | st.text(min_size=1, max_size=8)


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(BASE)


TOP_LEVEL = set(Settings.model_fields)


def _load_or_config_error(raw: Any) -> None:
    try:
        load_settings_dict(raw)
    except ConfigError as exc:
        _names_a_path(exc, raw)


def _names_a_path(exc: ConfigError, raw: Any = None) -> None:
    """The error's path is a dotted key path that exists in the input or in the schema (a missing key), or empty
    for a problem of the whole document, which the message then says (``<root>`` or the cross-field check)."""
    text = str(exc)
    assert text and "Traceback" not in text and exc.problem
    if exc.path:
        assert text.startswith(exc.path) or f": {exc.path}:" in text
        if exc.path.startswith("RELAYER__"):  # an env variable that names no key path
            return
        first = (json.loads(exc.path[:exc.path.index('"', 1) + 1]) if exc.path.startswith('"')
                 else exc.path.split(".")[0])
        assert first in TOP_LEVEL or (isinstance(raw, dict) and first in raw), exc.path


@FUZZ
@given(st.dictionaries(keys, values, max_size=6))
def test_random_documents(raw):
    _load_or_config_error(raw)


@FUZZ
@given(values)
def test_documents_of_any_type(raw):
    _load_or_config_error(raw)


@FUZZ
@given(st.data())
def test_mutations_of_the_example(data):
    raw = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(PATHS))
        node = raw
        try:
            for k in path[:-1]:
                node = node[k]
            op = data.draw(st.sampled_from(["delete", "replace", "add"]))
            if op == "delete" and isinstance(node, dict):
                node.pop(path[-1], None)
            elif op == "add" and isinstance(node, dict):
                node[data.draw(keys)] = data.draw(values)
            else:
                node[path[-1]] = data.draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    _load_or_config_error(raw)


env_keys = st.lists(keys, min_size=1, max_size=4).map(lambda ks: "RELAYER__" + "__".join(k.upper() for k in ks))
env_values = st.one_of(st.text(max_size=40), st.sampled_from(
    ["1", "-1", "true", "[1, 2", "[[[[[[[[", "\"x\"", "{ a = 1 }", "1e999", "nan", "0x", "http://", "1\nx = 2",
     "\x00"]))


@FUZZ
@given(st.dictionaries(env_keys, env_values, max_size=4), st.none() | st.text(max_size=30))
def test_env_overrides_with_junk(tmp_path_factory, env, store_url):
    if store_url is not None:
        env["RELAYER_STORE_URL"] = store_url
    try:
        load_settings(EXAMPLE, env=env)
    except ConfigError as exc:
        _names_a_path(exc, BASE | {k.removeprefix("RELAYER__").split("__")[0].lower(): None for k in env})


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_files(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError):
        load_settings(path, env={})


def test_env_override_paths_are_named():
    with pytest.raises(ConfigError) as err:
        load_settings(EXAMPLE, env={"RELAYER__CHAINS__ROLLUP_A__GAS__BUMP_PERCENT": "[1, 2"})
    assert err.value.path == "chains.rollup_a.gas.bump_percent"
    with pytest.raises(ConfigError) as err:
        load_settings(EXAMPLE, env={"RELAYER__API__NOPE": "1"})
    assert err.value.path == "api.nope" and "unknown key" in str(err.value)


# regressions: each of these raised something other than ConfigError before


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"[store]\nurl = \"\x80\"\n")
    with pytest.raises(ConfigError, match="not UTF-8 at byte 15"):
        load_settings(path, env={})


def test_file_nested_past_the_parser_depth(tmp_path):
    path = tmp_path / "c.toml"
    # past the interpreter's recursion limit whatever it is (a library imported earlier in the session may raise it)
    path.write_text("a = " + "[" * max(5000, 2 * sys.getrecursionlimit()))
    with pytest.raises(ConfigError, match="nested too deep"):
        load_settings(path, env={})


def test_env_value_nested_past_the_parser_depth():
    with pytest.raises(ConfigError) as err:
        load_settings(EXAMPLE, env={"RELAYER__RELAYER__BATCH_SIZE": "[" * 5000})
    assert err.value.path == "relayer.batch_size"


def test_config_path_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path, env={})


def test_env_variable_that_names_no_key():
    # was: ConfigError with the path "." (env RELAYER__. made a top-level key ".")
    with pytest.raises(ConfigError) as err:
        load_settings(EXAMPLE, env={"RELAYER__.": ""})
    assert err.value.path == "RELAYER__." and "'.' is not a key" in str(err.value)


def test_key_with_a_dot_is_quoted_in_the_path():
    raw = copy.deepcopy(BASE)
    raw["api"]["a.b"] = 1
    with pytest.raises(ConfigError) as err:
        load_settings_dict(raw)
    assert err.value.path == 'api."a.b"' and "unknown key" in str(err.value)
