"""The shape of the code: the longest functions, the largest modules and the import cycles between modules.

    python scripts/code_shape.py [--top 10] [--json] [ROOT]

Reads the project's packages with ``ast`` (nothing is imported). A cycle is a strongly connected group of modules
that import each other, directly or through others; imports under ``if TYPE_CHECKING:`` do not count (they do not
run). Used as the before/after evidence of the architecture refactor (issue 13).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

PACKAGES = ("config", "adapters", "light_clients", "relayer", "router", "devnets")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[module_name(root, path)] = path
    return found


def is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(tree: ast.Module, this: str, is_package: bool, modules: dict[str, Path]) -> set[str]:
    """Modules named by the import statements that run (``TYPE_CHECKING`` blocks skipped). ``from pkg import sub``
    names ``pkg.sub`` when that is a module, else ``pkg``."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node):
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(node, this, is_package)
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def resolve_relative(node: ast.ImportFrom, this: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = this.split(".") if is_package else this.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        named = runtime_imports(tree, name, path.name == "__init__.py", modules)
        graph[name] = {target for target in (closest_module(n, modules) for n in named) if target and target != name}
    return graph


def closest_module(name: str, modules: dict[str, Path]) -> str | None:
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def longest_functions(modules: dict[str, Path], root: Path, top: int) -> list[dict[str, object]]:
    rows = []
    for path in modules.values():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno:
                rows.append({"function": node.name, "where": f"{path.relative_to(root)}:{node.lineno}",
                             "lines": node.end_lineno - node.lineno + 1})
    return sorted(rows, key=lambda r: -int(str(r["lines"])))[:top]


def largest_modules(modules: dict[str, Path], root: Path, top: int) -> list[dict[str, object]]:
    rows = [{"module": str(p.relative_to(root)), "lines": len(p.read_text().splitlines())} for p in modules.values()]
    return sorted(rows, key=lambda r: -int(str(r["lines"])))[:top]


def shape(root: Path, top: int) -> dict[str, object]:
    modules = project_modules(root)
    return {"modules": len(modules),
            "longest_functions": longest_functions(modules, root, top),
            "largest_modules": largest_modules(modules, root, top),
            "import_cycles": cycles(import_graph(modules))}


def print_text(report: dict[str, object]) -> None:
    print(f"{report['modules']} modules")
    print("\nlongest functions (lines):")
    for row in report["longest_functions"]:  # type: ignore[attr-defined]
        print(f"  {row['lines']:5}  {row['function']}  {row['where']}")
    print("\nlargest modules (lines):")
    for row in report["largest_modules"]:  # type: ignore[attr-defined]
        print(f"  {row['lines']:5}  {row['module']}")
    found = report["import_cycles"]
    print(f"\nimport cycles: {len(found)}")  # type: ignore[arg-type]
    for group in found:  # type: ignore[attr-defined]
        print("  " + " <-> ".join(group))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = shape(Path(args.root), args.top)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
