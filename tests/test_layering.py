"""Import direction (DESIGN.md §1), checked like Home Assistant's hassfest:

gateway -> messaging, wallet, miniapps.host -> storage; sdk imports nothing of the server;
a built-in mini-program (miniapps/<id>/) imports only sdk; nothing imports tests or bench.

Peers stay apart: messaging imports neither wallet nor miniapps, wallet does not import
miniapps, and only gateway/ and run.py compose them (nothing else imports the gateway). And no
module takes part in an import circle — counting imports deferred into functions, which hide a
circle from the import system without removing it; only ``if TYPE_CHECKING:`` imports (never
run) are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = {"gateway", "messaging", "wallet", "miniapps", "storage", "run"}
FIRST_PARTY = SERVER | {"sdk", "tests", "bench"}


def imports_of(path: Path) -> set[str]:
    """Dotted first-party modules a file imports (absolute imports only; relative ones stay in the
    package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in FIRST_PARTY}


def forbidden(module_path: Path, imported: str) -> str | None:
    package = module_path.relative_to(ROOT).parts
    top, target = package[0], imported.split(".")
    if target[0] in {"tests", "bench"}:
        return "product code must not import tests or bench"
    if top == "storage" and target[0] != "storage":
        return "storage is the bottom layer"
    if top in {"messaging", "wallet"} and target[0] == "gateway":
        return "domains must not import the gateway"
    if top == "messaging" and target[0] in {"wallet", "miniapps"}:
        return "messaging imports neither wallet nor miniapps: the gateway composes peers"
    if top == "wallet" and target[0] == "miniapps":
        return "wallet does not import miniapps: the gateway composes peers"
    if top == "sdk" and target[0] != "sdk":
        return "the SDK is installable alone and imports nothing of the server"
    if top == "miniapps":
        inside_host = len(package) > 1 and package[1] == "host"
        if inside_host and target[0] == "gateway":
            return "the mini-program host must not import the gateway"
        if not inside_host and len(package) > 2 and target[0] != "sdk":
            return "a mini-program imports only sdk"
    if top not in {"gateway", "run.py"} and target[0] == "gateway":
        return "only gateway/ and run.py compose the domains"
    return None


def python_files():
    for top in ("gateway", "messaging", "wallet", "miniapps", "storage", "sdk"):
        yield from (ROOT / top).rglob("*.py")
    yield ROOT / "run.py"


def test_import_direction():
    files = list(python_files())
    assert len(files) > 10
    problems = []
    for path in files:
        for imported in sorted(imports_of(path)):
            reason = forbidden(path, imported)
            if reason:
                problems.append(f"{path.relative_to(ROOT)} imports {imported}: {reason}")
    assert problems == []


def test_the_rules_catch_violations(tmp_path):
    """The checker itself: each rule fires on a file that breaks it."""
    cases = {
        ("storage", "x.py"): "gateway.app",
        ("messaging", "x.py"): "gateway.keys",
        ("sdk", "x.py"): "storage.mongo",
        ("miniapps", "poll", "app.py"): "messaging.context",
        ("miniapps", "poll", "other.py"): "miniapps.host.registry",
        ("miniapps", "host", "x.py"): "gateway.app",
        ("gateway", "x.py"): "tests.helpers",
        ("messaging", "actions", "x.py"): "wallet.context",
        ("messaging", "calls", "x.py"): "miniapps.host.host",
        ("wallet", "actions", "x.py"): "miniapps.host.payments",
        ("sdk", "js", "x.py"): "gateway.keys",
    }
    for parts, imported in cases.items():
        assert forbidden(ROOT.joinpath(*parts), imported), (parts, imported)
    assert forbidden(ROOT / "gateway" / "x.py", "messaging.context") is None
    assert forbidden(ROOT / "gateway" / "x.py", "miniapps.host.host") is None
    assert forbidden(ROOT / "run.py", "gateway.app") is None
    assert forbidden(ROOT / "wallet" / "x.py", "messaging.context") is None
    assert forbidden(ROOT / "miniapps" / "host" / "x.py", "wallet.actions.payments") is None
    assert forbidden(ROOT / "miniapps" / "poll" / "app.py", "sdk") is None


# -- import circles ----------------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` (module ``name``) imports when it runs: at module
    level or inside functions, not under ``if TYPE_CHECKING:``. ``from package import module``
    counts as importing that module; relative imports are resolved."""
    found: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_statement(other)
            else:
                visit_statement(child)

    def visit_statement(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
        else:
            visit(node)

    visit(ast.parse(path.read_text(), str(path)))
    return found & known


def import_graph(root: Path, files: Iterable[Path]) -> dict[str, set[str]]:
    modules = {module_name(path, root): path for path in files}
    known = set(modules)
    return {name: imported_modules(path, name, known) for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle: the strongly connected components with more than one module, or a
    module importing itself (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = lowlink[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = lowlink[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])
            if lowlink[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    cycles.append(sorted(component))
    return cycles


def _cycles_touching(tops: set[str]) -> list[list[str]]:
    cycles = import_cycles(import_graph(ROOT, python_files()))
    return [c for c in cycles if any(m.split(".")[0] in tops for m in c)]


def test_no_import_cycles_in_the_server():
    """Includes the circles messaging/context.py <-> messaging/actions and wallet/context.py <->
    wallet/actions once were: the composer (gateway/compose.py) wires those now."""
    assert _cycles_touching({"gateway", "messaging", "wallet", "storage", "run"}) == []


def test_no_import_cycles_in_miniapps_or_sdk():
    assert _cycles_touching({"miniapps", "sdk"}) == []


def test_the_cycle_check_catches_a_circle(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def late():\n    from pkg.sub import c\n",  # deferred: still a circle
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\n",
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n",
        "e.py": "import pkg.d\n",  # d -> e only for the type checker: no circle
        "f.py": "import pkg.f\n",
    }
    for relative, text in files.items():
        (package / relative).write_text(text)
    graph = import_graph(tmp_path, package.rglob("*.py"))
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert graph["pkg.d"] == set()
    assert sorted(import_cycles(graph)) == [["pkg.a", "pkg.b", "pkg.sub.c"], ["pkg.f"]]
