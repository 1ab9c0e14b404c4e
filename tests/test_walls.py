"""The walls between the parts of leadscore, read from the source with ``ast`` (nothing is imported).

docs/architecture.md explains each wall. A test here fails when an import breaks one, naming the
file, the line and the import, so a wall cannot erode one convenient import at a time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core" / "src"
PLUGIN_SOURCES = sorted((ROOT / "plugins").glob("*/src"))
PLUGIN_PACKAGES = tuple(p.name for src in PLUGIN_SOURCES for p in src.iterdir() if p.is_dir() and p.name != "__pycache__")
PROJECT_PACKAGES = ("leadscore", "leadscore_cli", *PLUGIN_PACKAGES)
# What a plugin may import from leadscore: the public API (docs/hooks.md).
# leadscore.columnar.api: what plugins' columnar forms are built with (it needs leadscore[columnar]).
PUBLIC_API = ("leadscore", "leadscore.plugin", "leadscore.columnar.api")


@attrs.frozen
class Import:
    module: str  # the importing module
    target: str  # the imported module (or package, for names imported from it)
    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}: {self.module} imports {self.target}"


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, src: Path, modules: set[str]) -> Iterator[Import]:
    """Every import a module runs (at import time or inside a function), except type-only ones."""
    module = _module_name(path, src)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # `from leadscore import hookspecs` imports a module; `from leadscore import Engine` a name.
                yield Import(module, sub if sub in modules else base, path, node.lineno)
        todo.extend(ast.iter_child_nodes(node))


def _tree(src: Path) -> tuple[dict[str, Path], list[Import]]:
    files = {_module_name(p, src): p for p in src.rglob("*.py") if "__pycache__" not in p.parts}
    names = set(files)
    return files, [imp for path in files.values() for imp in _imports(path, src, names)]


CORE_FILES, CORE_IMPORTS = _tree(CORE)


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _broken(importer: tuple[str, ...], forbidden: tuple[str, ...], allowed_inside: tuple[str, ...] = ()) -> list[str]:
    return [str(imp) for imp in CORE_IMPORTS
            if _within(imp.module, *importer) and _within(imp.target, *forbidden)
            and not _within(imp.target, *allowed_inside)]


def test_the_walk_sees_the_core_and_its_imports():
    # A broken walk would make every wall below pass vacuously.
    assert {"leadscore.model", "leadscore.engine", "leadscore.backends.python", "leadscore.plugin"} <= set(CORE_FILES)
    assert any(imp.module == "leadscore.engine" and imp.target == "leadscore.rulepack.composer"
               for imp in CORE_IMPORTS)


WALLS = {
    "the core never imports the CLI, a plugin or click (not a core dependency)": (
        ("leadscore",), ("leadscore_cli", "click", *PLUGIN_PACKAGES)),
    "the records module imports nothing of the project": (("leadscore.model",), ("leadscore",)),
    "backends never import I/O, the CLI, pluggy, the plugin manager, the engine or the composer": (
        ("leadscore.backends",),
        ("leadscore.io", "leadscore_cli", "pluggy", "leadscore.plugins", "leadscore.engine",
         "leadscore.rulepack.composer")),
    "scoring, decay and routing never do I/O": (
        ("leadscore.scoring", "leadscore.default_plugins.decay", "leadscore.default_plugins.route"), ("leadscore.io",)),
    "the rulepack language never imports a backend, the engine or I/O": (
        ("leadscore.rulepack",), ("leadscore.backends", "leadscore.engine", "leadscore.io", "leadscore.plugins")),
}


@pytest.mark.parametrize("wall", sorted(WALLS))
def test_wall(wall: str):
    importer, forbidden = WALLS[wall]
    assert _broken(importer, forbidden) == []


def test_hookspecs_import_only_the_records():
    found = [str(imp) for imp in CORE_IMPORTS
             if imp.module == "leadscore.hookspecs" and _within(imp.target, "leadscore")
             and imp.target != "leadscore.model"]
    assert found == []


def test_the_core_reaches_its_builtin_plugins_only_through_the_plugin_manager():
    # plugins.py loads them by module name (a string), so switching one off really leaves it unused.
    found = [str(imp) for imp in CORE_IMPORTS
             if _within(imp.target, "leadscore.default_plugins")
             and not _within(imp.module, "leadscore.default_plugins")]
    assert found == []


def test_no_import_cycles_among_core_modules():
    graph: dict[str, set[str]] = {name: set() for name in CORE_FILES}
    for imp in CORE_IMPORTS:
        if imp.target in graph and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    assert _cycles(graph) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("src", PLUGIN_SOURCES, ids=lambda p: p.parent.name)
def test_plugins_import_only_the_public_api(src: Path):
    files, imports = _tree(src)
    assert files, f"no modules under {src}"
    found = [str(imp) for imp in imports if _within(imp.target, "leadscore") and imp.target not in PUBLIC_API]
    assert found == []


@pytest.mark.parametrize("src", PLUGIN_SOURCES, ids=lambda p: p.parent.name)
def test_plugins_import_no_other_project_package(src: Path):
    files, imports = _tree(src)
    own = {name.split(".")[0] for name in files}
    others = tuple(p for p in PROJECT_PACKAGES if p != "leadscore" and p not in own)
    assert [str(imp) for imp in imports if _within(imp.target, *others)] == []


def test_the_activity_reference_lists_every_known_type_with_its_tier():
    from leadscore.taxonomy.activities import ACTIVITY_TIERS

    text = (ROOT / "docs" / "activities.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip()
            for line in text.splitlines() if line.startswith("| `")}
    assert rows == {t: tier for tier, types in ACTIVITY_TIERS.items() for t in types}
