"""One name per chain family (``ChainFamily``, the config's names) from the config through the router's profiles,
and intent statuses as an ``IntentStatus`` whose values are the JSON's and the store's text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from config.errors import ConfigError
from config.settings import ChainConfig, ChainFamily
from router.intents import IntentRecord, IntentStatus, intent_view, is_settled
from router.profiles import PROFILE_DIR, load_profile


def test_chain_family_is_the_config_discriminator() -> None:
    models = get_args(get_args(ChainConfig)[0])
    assert {get_args(m.model_fields["family"].annotation)[0] for m in models} == set(ChainFamily)


@pytest.mark.parametrize("profile", sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))
def test_profiles_name_families_as_the_config_does(profile: str) -> None:
    chains = load_profile(profile).chains
    assert all(isinstance(c.family, ChainFamily) for c in chains)
    assert ChainFamily.SOLANA in {c.family for c in load_profile("mainnet_like").chains}


def test_a_profile_with_another_family_name_is_refused(tmp_path: Path) -> None:
    text = (PROFILE_DIR / "mainnet_like.toml").read_text().replace('family = "solana"', 'family = "svm"')
    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"chains\.solana\.family.*'svm'"):
        load_profile(str(tmp_path / "p.toml"))


def test_intent_status_is_its_text_in_json() -> None:
    rec = IntentRecord(id="int_1", batch="b", created_at=0.0, updated_at=0.0, kind="xchain", token="TST",
                       amount="1", units="1", recipient="0x", status=IntentStatus.DELIVERED)
    assert json.loads(json.dumps(intent_view(rec)))["status"] == "delivered"
    assert is_settled(rec)
    rec.status = "included"  # as read back from the store's text column
    assert rec.status == IntentStatus.INCLUDED and not is_settled(rec)
    assert [s.value for s in IntentStatus] == ["planned", "queued", "expired", "signed", "unsigned", "submitted",
                                               "included", "delivered", "failed", "unserved"]
