"""Relayer and validator daemons: composition root, watchers, processors, store, CLI."""
