"""The kiosk's import rule, read from the source with `ast` (nothing is imported).

`collect` finds every import in the top-level packages, at module level and
inside functions alike, resolves relative imports, and keeps the edges that
point at one of our own packages. `classify` names a module's layer,
`violations` checks the edges against the rule of each layer, and
`package_cycles` reports any cycle between the top-level packages. The tests
in `test_dependencies.py` run these on the checkout; the same functions run
on a small synthetic tree to show that they can fail.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("kiosk", "drivers", "screens", "offline", "central")
SKIPPED_DIRS = {"tests", "bench", ".venv", "__pycache__"}

CORE, DRIVER, SIMULATOR, SCREEN, OFFLINE, CENTRAL = "core", "driver", "simulator", "screen", "offline", "central"
SIMULATOR_MODULES = ("drivers.card_sim", "drivers.printer_sim", "drivers.terminal_sim", "drivers.demo")
CENTRAL_MAY_USE = ("kiosk.money", "kiosk.catalogue", "kiosk.documents", "kiosk.errors", "kiosk.messages",
                   "kiosk.wire", "kiosk.logs", "kiosk.id_card_data", "kiosk.issuer_keys", "kiosk.card_proof",
                   "kiosk.ports.card_reader", "kiosk.ports.audit",
                   "kiosk.atomic_file",   # the one way to write a file whole (central/releases/ writes metadata)
                   "kiosk.scrypt_hash")   # the one way to keep a secret as its hash (staff passwords)

# What each layer is, as a message names it ("... the core imports no outbox implementation").
NOUNS = {CORE: "core module", DRIVER: "driver", SIMULATOR: "simulator", SCREEN: "screen",
         OFFLINE: "outbox implementation", CENTRAL: "central service module"}


@dataclass(frozen=True)
class Edge:
    """One import: `source` (a module, in file `path` at `line`) imports `target`."""

    source: str
    path: str
    line: int
    target: str

    def describe(self, why: str) -> str:
        return "%s:%d imports %s: %s" % (self.path, self.line, self.target, why)


@dataclass
class Imports:
    edges: list[Edge]
    unreadable: list[str]      # "path: why" for each file `ast` could not read


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def classify(module: str) -> str | None:
    """The layer of one of our modules, or None for a module that is not ours."""
    top = module.split(".")[0]
    if top == "kiosk":
        return CORE
    if top == "drivers":
        return SIMULATOR if any(_within(module, s) for s in SIMULATOR_MODULES) else DRIVER
    return {"screens": SCREEN, "offline": OFFLINE, "central": CENTRAL}.get(top)


def _module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Module name to file, for every .py file under the packages; a folder is a package too."""
    modules: dict[str, Path] = {}
    for package in packages:
        base = root / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(root)
            if SKIPPED_DIRS.intersection(relative.parts[:-1]):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
            for depth in range(1, len(parts)):          # namespace packages (no __init__.py) count as modules
                modules.setdefault(".".join(parts[:depth]), path.parent)
    return modules


def _imported_names(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The modules one import statement names: `from a.b import c` is a.b.c when that is a module, else a.b."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        if node.level > 1:
            package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    names = []
    for alias in node.names:
        submodule = "%s.%s" % (base, alias.name)
        names.append(submodule if alias.name != "*" and submodule in known else base)
    return names


def collect(root: Path, packages: tuple[str, ...] = PACKAGES) -> Imports:
    """Every import edge between our own modules under `root`, with its file and line."""
    root = Path(root)
    modules = _module_files(root, packages)
    known = set(modules)
    edges: list[Edge] = []
    unreadable: list[str] = []
    for module, path in sorted(modules.items()):
        if path.is_dir():
            continue
        shown = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=shown)
        except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
            unreadable.append("%s: %s" % (shown, exc))
            continue
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported_names(node, module, is_package, known):
                if target.split(".")[0] in packages:
                    edges.append(Edge(module, shown, node.lineno, target))
    return Imports(sorted(set(edges), key=lambda e: (e.path, e.line, e.target)), unreadable)


def _core_may_import(target: str) -> str | None:
    layer = classify(target)
    return None if layer == CORE else "the core imports no %s" % NOUNS[layer]


def _driver_may_import(target: str) -> str | None:
    layer = classify(target)
    return None if layer in (CORE, DRIVER) else "a driver imports no %s" % NOUNS[layer]


def _screen_may_import(target: str) -> str | None:
    layer = classify(target)
    return None if layer in (CORE, SCREEN) else "a screen imports only the core and screens, no %s" % NOUNS[layer]


def _offline_may_import(target: str) -> str | None:
    layer = classify(target)
    return None if layer in (CORE, OFFLINE) else "the outbox imports only the core and offline, no %s" % NOUNS[layer]


def _central_may_import(target: str) -> str | None:
    layer = classify(target)
    if layer == CENTRAL or any(_within(target, pure) for pure in CENTRAL_MAY_USE):
        return None
    if layer == CORE:
        return "central uses only the core's pure modules (%s)" % ", ".join(CENTRAL_MAY_USE)
    return "central imports no %s" % NOUNS[layer]


def _simulator_may_import(target: str) -> str | None:
    return "a simulator imports no screen" if classify(target) == SCREEN else None


RULES = {CORE: _core_may_import, DRIVER: _driver_may_import, SCREEN: _screen_may_import,
         OFFLINE: _offline_may_import, CENTRAL: _central_may_import, SIMULATOR: _simulator_may_import}


def violations(edges: list[Edge], layer: str) -> list[str]:
    """The edges out of `layer` that its rule forbids, one readable line each."""
    rule = RULES[layer]
    found = []
    for edge in edges:
        if classify(edge.source) != layer:
            continue
        why = rule(edge.target)
        if why is not None:
            found.append(edge.describe(why))
    return found


def package_cycles(edges: list[Edge]) -> list[str]:
    """Each elementary cycle between top-level packages, with one import that makes each step."""
    steps: dict[tuple[str, str], list[Edge]] = {}
    for edge in edges:
        step = (edge.source.split(".")[0], edge.target.split(".")[0])
        if step[0] != step[1]:
            steps.setdefault(step, []).append(edge)
    # Each step is shown by one of its imports: one that breaks a layer rule when there is one.
    witness = {step: min(found, key=lambda e: RULES[classify(e.source)](e.target) is None)
               for step, found in steps.items()}
    graph: dict[str, set[str]] = {}
    for source, target in witness:
        graph.setdefault(source, set()).add(target)
    order = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    cycles: list[list[str]] = []

    def walk(start: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == start:
                cycles.append(path + [start])
            elif nxt not in path and order.index(nxt) > order.index(start):   # each cycle once, from its least node
                walk(start, path + [nxt])

    for start in order:
        walk(start, [start])
    reports = []
    for cycle in cycles:
        lines = ["cycle %s" % " -> ".join(cycle)]
        for a, b in zip(cycle, cycle[1:]):
            more = len(steps[(a, b)]) - 1
            lines.append("    %s%s" % (witness[(a, b)].describe("%s -> %s" % (a, b)),
                                       " (and %d more)" % more if more else ""))
        reports.append("\n".join(lines))
    return reports
