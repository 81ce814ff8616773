"""The layering: import directions between packages and inside relayer/, no import cycles, the API's one view of the
daemon, and no chain SDK outside adapters/, light_clients/ and devnets/."""

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


def _code_shape():
    import importlib.util

    spec = importlib.util.spec_from_file_location("code_shape", ROOT / "scripts" / "code_shape.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycles_between_modules():
    """No two modules import each other, directly or round a loop (imports under TYPE_CHECKING do not run and
    do not count); scripts/code_shape.py prints the same report."""
    shape = _code_shape()
    assert shape.cycles(shape.import_graph(shape.project_modules(ROOT))) == []


# inside relayer/: what each subpackage may import of the others. The leaves every part may use are the
# metrics, the failpoints and the loop-lag probe (relayer/daemon/{metrics,failpoints,loop_lag,logconfig}.py) and the
# relayer's request signing (relayer/api/relayer_auth.py, ratelimit.py: the client half signs in the pipeline), the
# progress bars, and the pipeline's vocabulary of outcomes and reasons (relayer/pipeline/outcome.py: the store
# records a message's last reason in its terms).
RELAYER_LEAVES = {"relayer.daemon.metrics", "relayer.daemon.failpoints", "relayer.daemon.loop_lag",
                  "relayer.daemon.logconfig", "relayer.api.relayer_auth", "relayer.api.ratelimit",
                  "relayer.cli.progress", "relayer.pipeline.outcome"}
RELAYER_MAY_IMPORT = {
    "relayer.store": set(),
    "relayer.pipeline": {"relayer.store"},
    "relayer.explorer": {"relayer.store"},
    "relayer.api": {"relayer.store", "relayer.explorer"},
    "relayer.daemon": {"relayer.store", "relayer.pipeline", "relayer.api", "relayer.explorer"},
    "relayer.bench": {"relayer.store", "relayer.pipeline", "relayer.api", "relayer.daemon"},
    "relayer.cli": {"relayer.store", "relayer.pipeline", "relayer.api", "relayer.daemon", "relayer.bench",
                    "relayer.explorer"},
}


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _relayer_imports(path: Path) -> set[str]:
    """Modules under relayer.* that ``path`` imports, TYPE_CHECKING blocks included (a type is a dependency)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}") else node.module
                      for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name.startswith("relayer.")}


def test_relayer_subpackages_import_only_what_their_layer_allows():
    problems = []
    for package, allowed in RELAYER_MAY_IMPORT.items():
        for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
            for name in sorted(_relayer_imports(path)):
                target = ".".join(name.split(".")[:2])
                if target in (package, "relayer") or name in RELAYER_LEAVES or target in allowed:
                    continue
                if any(name.startswith(leaf + ".") or name == leaf for leaf in RELAYER_LEAVES):
                    continue
                problems.append(f"{path.relative_to(ROOT)} imports {name}")
    assert problems == []


def test_the_api_reads_the_daemon_only_through_daemon_view():
    """Every function of relayer/api/ that takes the daemon takes a ``DaemonView`` (relayer/api/daemon_view.py), so
    what the HTTP side may read of the daemon is one narrow, declared interface."""
    problems = []
    for path in (ROOT / "relayer" / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in node.args.args + node.args.kwonlyargs:
                    if arg.arg == "daemon" and ast.unparse(arg.annotation or ast.Constant(None)) != "DaemonView":
                        problems.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}(daemon: "
                                        f"{ast.unparse(arg.annotation) if arg.annotation else 'unannotated'})")
    assert problems == []
