"""The `relayer` command: one module per command group, the status view."""

from relayer.cli.commands import main

__all__ = ["main"]
