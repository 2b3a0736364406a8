"""Prove that tminus's layers point one way: no import cycle between packages, no upward import.

Stdlib only (the `nox -s lint` session installs nothing but ruff). It reads every ops/**/*.py with
`ast`, lists every import of an `ops.*` module -- at the top of a module and inside functions
alike -- maps each module to its *unit* (a subpackage such as ``ops.checks``, or a root module such
as ``ops.report``), and fails on

  (a) a cycle in the unit graph, and
  (b) an import from a lower layer of a higher one (see LAYERS below).

Imports under ``if TYPE_CHECKING:`` are listed but do not count: they never run.

    python scripts/check_layers.py            # check; exit 1 on a violation
    python scripts/check_layers.py --stats    # also print the graph and the in-function imports

See docs/architecture.md for the picture.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "ops"

# Lowest layer first. A unit may import its own layer or a lower one, never a higher one.
# A unit named nowhere here is an error: a new module must be given its place.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {
        "ops", "ops.errors", "ops.atomic", "ops.bounded", "ops.redact", "ops.hashing",
        "ops.versioning", "ops.config", "ops.configfile", "ops.report", "ops.kms", "ops.stamps",
    }),
    ("runtime", {"ops.runtime"}),
    ("secretscan", {"ops.secretscan"}),  # the scanner reads files and git through runtime
    ("release", {"ops.release"}),  # release files (VERSION, manifest), tagging, notes, builds
    ("checks", {"ops.checks"}),  # the predeploy sections: they read release files, never write
    ("deploy", {"ops.deploy"}),  # actions that change a stack; they gate on checks and the manifest
    ("pipelines", {"ops.pipelines", "ops.checklist"}),
    ("tasks", {"ops.taskkit", "ops.tasks", "ops.cli", "ops.__main__"}),
    # this repository's own demo and base-image builder: nothing of the library may import it
    ("dev", {"ops.dev"}),
]

# Known violations still to be removed, as (importing module, imported module). Each one is
# printed as "allowed" and left out of the graph that is judged; any import not listed here that
# breaks a rule fails. An entry whose import is gone fails too, so this list only ever shrinks.
ALLOWED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. ops.release.checklist
    target: str  # the imported module, e.g. ops.checks
    line: int
    in_function: bool
    type_only: bool

    @property
    def path(self) -> str:
        return module_path(self.module)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(module: str) -> str:
    base = ROOT.joinpath(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    return str(path.relative_to(ROOT))


def unit_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return PACKAGE
    candidate = ".".join(parts[:2])
    if (ROOT / PACKAGE / parts[1]).is_dir():
        return candidate
    return candidate if len(parts) >= 2 else PACKAGE


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.is_package = is_package
        self.depth = 0
        self.type_only = 0
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt) -> None:
        if target == PACKAGE or target.startswith(PACKAGE + "."):
            if any(f.target == target and f.line == node.lineno for f in self.found):
                return  # `from ops.x import a, b` is one import of ops.x
            self.found.append(Import(self.module, target, node.lineno,
                                     in_function=self.depth > 0, type_only=self.type_only > 0))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_only += 1
            for child in node.body:
                self.visit(child)
            self.type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".")
            if not self.is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # `from ops.checks import run_predeploy` imports ops.checks;
        # `from ops import report` imports ops.report.
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            if module_exists(sub):
                self._add(sub, node)
            else:
                self._add(source, node)


def module_exists(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def collect() -> list[Import]:
    found: list[Import] = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        module = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        collector = _Collector(module, path.name == "__init__.py")
        collector.visit(tree)
        found.extend(collector.found)
    return found


def layer_index() -> dict[str, int]:
    index: dict[str, int] = {}
    for number, (_, units) in enumerate(LAYERS):
        for unit in units:
            index[unit] = number
    return index


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan), each sorted."""
    counter = 0
    stack: list[str] = []
    on_stack: set[str] = set()
    low: dict[str, int] = {}
    order: dict[str, int] = {}
    components: list[list[str]] = []

    def visit(node: str) -> None:
        nonlocal counter
        order[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in order:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], order[succ])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return sorted(components)


def judge(imports: list[Import], *, stats: bool = False) -> tuple[list[str], list[str], int, int]:
    """(problems, allowed lines, number of cycles, number of upward imports)."""
    index = layer_index()
    problems: list[str] = []
    units = {unit_of(module_name(p)) for p in (ROOT / PACKAGE).rglob("*.py")}
    problems += [f"unplaced: {unit} is in no layer of LAYERS in scripts/check_layers.py"
                 for unit in sorted(units - set(index))]

    graph: dict[str, set[str]] = defaultdict(set)
    edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    allowed_used: set[tuple[str, str]] = set()
    allowed_lines: list[str] = []
    for imp in imports:
        src, dst = unit_of(imp.module), unit_of(imp.target)
        if imp.type_only or dst in (src, PACKAGE):
            continue
        key = (imp.module, imp.target)
        if key in ALLOWED:  # a known violation: listed, and left out of the graph that is judged
            allowed_used.add(key)
            allowed_lines.append(f"  allowed: {imp.path}:{imp.line} {imp.module} -> {imp.target}")
            continue
        graph[src].add(dst)
        edges[(src, dst)].append(imp)

    n_up = 0
    for (src, dst), via in sorted(edges.items()):
        if src in index and dst in index and index[dst] > index[src]:
            for imp in via:
                n_up += 1
                where = "inside a function" if imp.in_function else "at the top"
                problems.append(f"upward: {imp.path}:{imp.line} {imp.module} "
                                f"({LAYERS[index[src]][0]}) imports {imp.target} "
                                f"({LAYERS[index[dst]][0]}), {where}")

    cycles = find_cycles(graph)
    for cycle in cycles:
        inner = [f"{a} -> {b}: {', '.join(f'{i.path}:{i.line}' for i in edges[(a, b)])}"
                 for a in cycle for b in cycle if (a, b) in edges]
        problems.append("cycle: " + " <-> ".join(cycle) + "\n    " + "\n    ".join(inner))

    problems += [f"stale allowlist entry (that import is gone, remove it): {a} -> {b}"
                 for a, b in sorted(ALLOWED - allowed_used)]
    if stats:
        print("unit graph (type-only and allowlisted imports left out):")
        for src in sorted(graph):
            print(f"  {src} -> {', '.join(sorted(graph[src]))}")
    return problems, allowed_lines, len(cycles), n_up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stats", action="store_true",
                        help="print the unit graph and every in-function import")
    args = parser.parse_args(argv)

    imports = collect()
    problems, allowed_lines, n_cycles, n_up = judge(imports, stats=args.stats)
    in_function = [i for i in imports if i.in_function]
    if args.stats:
        print(f"in-function imports of ops modules: {len(in_function)}")
        for imp in in_function:
            print(f"  {imp.path}:{imp.line} {imp.target}")
    for line in allowed_lines:
        print(line)
    summary = (f"check_layers: {len(imports)} imports of ops modules "
               f"({len(in_function)} inside functions), {n_cycles} cycle(s), "
               f"{n_up} upward import(s), {len(allowed_lines)} allowlisted")
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        print(summary + ": FAILED", file=sys.stderr)
        return 1
    print(summary + ": ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
