"""The ``relayer`` argument parser: each command module defines its sub-parser next to its handler."""

from __future__ import annotations

import argparse

from relayer.cli.audit import add_audit_parser
from relayer.cli.bench import add_bench_parser
from relayer.cli.config import add_config_parser
from relayer.cli.devnet import add_devnet_parser
from relayer.cli.messages import add_messages_parser
from relayer.cli.run import add_run_parser
from relayer.cli.send import add_send_parser
from relayer.cli.simulate import add_simulate_parser

COMMANDS = (add_run_parser, add_send_parser, add_messages_parser, add_config_parser, add_audit_parser,
            add_devnet_parser, add_bench_parser, add_simulate_parser)  # in the order ``relayer --help`` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relayer", description="Cross-chain relayer, validator and devnet tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(sub)
    return parser
