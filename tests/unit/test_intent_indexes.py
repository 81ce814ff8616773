"""The intents table's indexes on a store an older version made: the full indexes it had (``RETIRED_INDEXES``) are
dropped at start, the partial ones that replace them are made, and the lookups they serve use them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from relayer.store.schema import make_engine
from router.intents import RETIRED_INDEXES, IntentStore


def _indexes(store: IntentStore) -> set[str]:
    with store.engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))}


def test_an_older_stores_full_indexes_are_dropped_and_the_partial_ones_made(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    IntentStore(engine)
    with engine.begin() as conn:  # as an older version left the table: full indexes, no partial ones
        for name in ("ix_intents_set_tx_hash", "ix_intents_set_signer", "ix_intents_set_integrator"):
            conn.execute(text(f"DROP INDEX {name}"))
        for name in RETIRED_INDEXES:
            conn.execute(text(f"CREATE INDEX {name} ON intents ({name.removeprefix('ix_intents_')})"))
    store = IntentStore(engine)
    indexes = _indexes(store)
    assert not indexes & set(RETIRED_INDEXES)
    assert {"ix_intents_set_tx_hash", "ix_intents_set_signer", "ix_intents_set_integrator"} <= indexes
    assert IntentStore(engine) is not None  # a second start finds nothing to drop


def test_lookups_by_hash_signer_and_integrator_use_the_partial_indexes(tmp_path: Path) -> None:
    store = IntentStore(make_engine(f"sqlite:///{tmp_path / 'new.db'}"))
    with store.engine.connect() as conn:
        for column in ("tx_hash", "signer", "integrator"):
            plan = " ".join(str(r[-1]) for r in conn.execute(
                text(f"EXPLAIN QUERY PLAN SELECT id FROM intents WHERE {column} = :v"), {"v": "x"}))
            assert f"ix_intents_set_{column}" in plan, plan
