"""Where the devnet finds anvil: the checkout's node_modules first, then PATH; when neither has it, the error says
what to run where the package is (a checkout: `npm ci`; an installed package: `npm i -g @foundry-rs/anvil`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.evm.devnet import DevnetError, anvil_binary


def test_the_checkout_s_anvil_comes_first(tmp_path: Path) -> None:
    local = tmp_path / "node_modules" / ".bin" / "anvil"
    local.parent.mkdir(parents=True)
    local.write_text("")
    assert anvil_binary(tmp_path) == str(local)


def test_a_checkout_without_anvil_is_told_to_run_npm_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # a PATH with no anvil on it
    (tmp_path / "package.json").write_text("{}")
    with pytest.raises(DevnetError, match=r"run `npm ci` in "):
        anvil_binary(tmp_path)


def test_an_installed_package_is_told_to_put_anvil_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DevnetError, match=r"anvil not found on PATH: install it with `npm i -g @foundry-rs/anvil`"):
        anvil_binary(tmp_path / "site-packages")
