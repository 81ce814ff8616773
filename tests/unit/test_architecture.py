"""DESIGN.md's direction of imports, and no chain SDK outside adapters/, light_clients/ and devnets/."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {
    "config": {"config"},
    "adapters": {"adapters", "config"},
    "light_clients": {"light_clients", "adapters", "config"},
    "router": {"router", "adapters", "light_clients", "config"},
    "relayer": {"relayer", "adapters", "light_clients", "router", "config", "devnets"},
    "devnets": {"devnets", "adapters", "light_clients", "config"},
}
CHAIN_SDKS = {"web3", "eth_account", "eth_abi", "solana", "solders", "cosmpy"}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_layers_import_only_downwards():
    problems = []
    for package, allowed in ALLOWED.items():
        for path in (ROOT / package).rglob("*.py"):
            ours = imports_of(path) & set(ALLOWED)
            for bad in ours - allowed:
                problems.append(f"{path.relative_to(ROOT)} imports {bad}")
    assert problems == []


def test_chain_sdks_stay_in_adapters_and_light_clients():
    problems = []
    for package in ("relayer", "router", "config"):
        for path in (ROOT / package).rglob("*.py"):
            for bad in imports_of(path) & CHAIN_SDKS:
                problems.append(f"{path.relative_to(ROOT)} imports {bad}")
    assert problems == []
