"""The code's shape, read from the source (each module's AST, every import in it, including
those inside functions): httpx only in the Metronome client (and the sandbox, which fakes the
API with httpx transports), no other module reaching into the client's private names, the
client importing nothing of the project above it, and no import cycle among the project's
modules. The checks run on the real tree, and on small made-up trees that break each rule,
so a check that could never fail would show here."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("customers", "dashboard")
CLIENT = "customers.metronome"
# Modules that may import httpx: the client, and the sandbox (a fake API on httpx transports).
HTTPX_ALLOWED = (CLIENT, "customers.sandbox")


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # the project module (or outside package) imported
    names: tuple[str, ...]  # for `from module import a, b`; () for `import module`
    line: int


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    path: Path
    is_package: bool
    imports: tuple[Import, ...]
    # Attributes read from a name bound to an imported module: (module, attribute, line).
    attributes: tuple[tuple[str, str, int], ...]


def modules(root: Path) -> dict[str, Module]:
    """Every module of the project's packages under `root`, by dotted name."""
    found: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            found[name] = _read(name, path, is_package)
    return found


def _read(name: str, path: Path, is_package: bool) -> Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if is_package else name.rpartition(".")[0]
    imports: list[Import] = []
    bound: dict[str, str] = {}  # local name -> module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports.append(Import(alias.name, (), node.lineno))
                if alias.asname:
                    bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = tuple(alias.name for alias in node.names)
            imports.append(Import(base, names, node.lineno))
            for alias in node.names:
                # `from customers import metronome`: `metronome` may be a module.
                bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    attributes = tuple(
        (bound[node.value.id], node.attr, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in bound
    )
    return Module(name, path, is_package, tuple(imports), attributes)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def _resolve(name: str, known: dict[str, Module]) -> str | None:
    """The project module `name` is, or lies in (`pkg.func` -> `pkg`); None outside it."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(module: Module, known: dict[str, Module]) -> Iterator[tuple[str, int]]:
    """The project modules importing `module` runs, with the line that imports each: the
    target (a submodule named in `from pkg import sub`, else the module the name comes
    from, a package's __init__ for a re-exported name), and each package __init__ on the way
    to it (Python runs those first) except the importer's own, already running."""
    for imp in module.imports:
        targets = [
            f"{imp.module}.{name}" if f"{imp.module}.{name}" in known else imp.module
            for name in imp.names
        ] or [imp.module]
        for target in targets:
            resolved = _resolve(target, known)
            if resolved is None:
                continue
            if resolved != module.name:
                # Even the importer's own package: a name taken from its __init__ runs it.
                yield resolved, imp.line
            parts = resolved.split(".")
            for depth in range(1, len(parts)):
                step = ".".join(parts[:depth])
                if step in known and not _within(module.name, step):
                    yield step, imp.line


def graph(known: dict[str, Module]) -> dict[str, set[str]]:
    return {
        name: {target for target, _ in imported_modules(module, known)}
        for name, module in known.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that ends where it starts) for each strongly connected group of
    modules that import each other, found with Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return [_a_cycle_in(set(group), edges) for group in groups]


def _a_cycle_in(group: set[str], edges: dict[str, set[str]]) -> list[str]:
    start = min(group)
    path = [start]
    seen = {start}
    node = start
    while True:
        following = sorted(edges[node] & group)
        if start in following and len(path) > 1:
            return [*path, start]
        node = next((n for n in following if n not in seen), start)
        if node == start:
            return [*path, start]
        path.append(node)
        seen.add(node)


def httpx_outside_the_client(known: dict[str, Module]) -> list[str]:
    return [
        f"{module.name}:{imp.line} imports {imp.module}"
        for module in known.values()
        if not any(_within(module.name, allowed) for allowed in HTTPX_ALLOWED)
        for imp in module.imports
        if _within(imp.module, "httpx")
    ]


def private_client_names_outside_it(known: dict[str, Module]) -> list[str]:
    found = []
    for module in known.values():
        if _within(module.name, CLIENT):
            continue
        for imp in module.imports:
            if not _within(imp.module, CLIENT):
                continue
            private = [part for part in imp.module.split(".") if part.startswith("_")]
            private += [name for name in imp.names if name.startswith("_")]
            found += [f"{module.name}:{imp.line} imports {imp.module}: {p}" for p in private]
        found += [
            f"{module.name}:{line} uses {owner}.{attribute}"
            for owner, attribute, line in module.attributes
            if _within(owner, CLIENT) and attribute.startswith("_")
        ]
    return found


def client_imports_from_above(known: dict[str, Module]) -> list[str]:
    """The client imports nothing of the project outside its own package: no settings, no
    wiring, no dashboard (its user agent is passed in)."""
    return [
        f"{module.name}:{line} imports {target}"
        for module in known.values()
        if _within(module.name, CLIENT)
        for target, line in imported_modules(module, known)
        if not _within(target, CLIENT) and target != "customers"
    ]


# --- The real tree -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> dict[str, Module]:
    return modules(PROJECT_ROOT)


def test_the_checks_read_the_whole_project(project):
    # A path mistake would make every check below pass on nothing.
    assert {"customers.views", "customers.wiring", "dashboard.settings"} <= project.keys()
    assert f"{CLIENT}.http" in project and "customers.index.sync" in project
    assert "httpx" in {imp.module for imp in project[f"{CLIENT}.http"].imports}


def test_only_the_metronome_client_and_the_sandbox_import_httpx(project):
    assert httpx_outside_the_client(project) == []


def test_no_module_outside_the_client_uses_its_private_names(project):
    assert private_client_names_outside_it(project) == []


def test_the_client_imports_nothing_of_the_project_above_it(project):
    assert client_imports_from_above(project) == []


def test_the_projects_modules_do_not_import_each_other_in_a_circle(project):
    assert cycles(graph(project)) == []


# --- The checks themselves, on made-up trees that break each rule --------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Module]:
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    for relative, source in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return modules(tmp_path)


CLIENT_PACKAGE = {
    "customers/metronome/__init__.py": "from customers.metronome.client import Client\n",
    "customers/metronome/client.py": "import httpx\n\ndef _helper(): ...\nclass Client: ...\n",
}


def test_httpx_in_a_view_is_found_even_inside_a_function(tmp_path):
    known = _tree(
        tmp_path,
        {
            **CLIENT_PACKAGE,
            "customers/views.py": "def view():\n    from httpx import Client\n",
            "customers/sandbox/api.py": "import httpx\n",
        },
    )

    assert httpx_outside_the_client(known) == ["customers.views:2 imports httpx"]


def test_a_private_client_name_is_found_imported_or_read_as_an_attribute(tmp_path):
    known = _tree(
        tmp_path,
        {
            **CLIENT_PACKAGE,
            "customers/export.py": "from customers.metronome.client import _helper\n",
            "customers/wiring.py": "from customers.metronome import client\nclient._helper()\n",
        },
    )

    assert sorted(private_client_names_outside_it(known)) == [
        "customers.export:1 imports customers.metronome.client: _helper",
        "customers.wiring:2 uses customers.metronome.client._helper",
    ]


def test_the_client_importing_the_dashboard_or_wiring_is_found(tmp_path):
    known = _tree(
        tmp_path,
        {
            **CLIENT_PACKAGE,
            "customers/metronome/http.py": "import dashboard\n",
            "customers/metronome/shared.py": "def get():\n    from customers import wiring\n",
            "customers/wiring.py": "",
        },
    )

    assert sorted(client_imports_from_above(known)) == [
        "customers.metronome.http:1 imports dashboard",
        "customers.metronome.shared:2 imports customers.wiring",
    ]


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    known = _tree(
        tmp_path,
        {
            **CLIENT_PACKAGE,
            "customers/wiring.py": "from customers.metronome.client import Client\n",
            "customers/metronome/shared.py": "def get():\n    from customers import wiring\n",
            "customers/metronome/client.py": "from customers.metronome.shared import get\n",
        },
    )

    [cycle] = cycles(graph(known))
    assert cycle[0] == cycle[-1]
    assert {"customers.wiring", "customers.metronome.shared"} <= set(cycle)


def test_a_cycle_through_a_package_init_re_export_is_found(tmp_path):
    # client.py takes a name from the package, whose __init__ re-exports client.py's class.
    known = _tree(
        tmp_path,
        {
            **CLIENT_PACKAGE,
            "customers/metronome/errors.py": "class Error(Exception): ...\n",
            "customers/metronome/client.py": "from customers.metronome import Error\n",
        },
    )

    assert cycles(graph(known)) == [
        ["customers.metronome", "customers.metronome.client", "customers.metronome"]
    ]


def test_importing_a_submodule_runs_its_packages_init_first(tmp_path):
    # views -> index.search runs index/__init__, which imports views: a cycle.
    known = _tree(
        tmp_path,
        {
            "customers/views.py": "from customers.index.search import search\n",
            "customers/index/__init__.py": "from customers import views\n",
            "customers/index/search.py": "def search(): ...\n",
        },
    )

    assert cycles(graph(known)) == [["customers.index", "customers.views", "customers.index"]]


def test_a_package_init_importing_its_own_modules_is_no_cycle(tmp_path):
    known = _tree(tmp_path, {**CLIENT_PACKAGE, "customers/metronome/wire.py": "X = 1\n"})

    assert cycles(graph(known)) == []
