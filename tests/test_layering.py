"""Import direction (DESIGN.md §1), checked like Home Assistant's hassfest:

gateway -> messaging, wallet, miniapps.host -> storage; sdk imports nothing of the server;
a built-in mini-program (miniapps/<id>/) imports only sdk; nothing imports tests or bench.
"""

from __future__ import annotations

import ast
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
    if top == "sdk" and target[0] != "sdk":
        return "the SDK is installable alone and imports nothing of the server"
    if top == "miniapps":
        inside_host = len(package) > 1 and package[1] == "host"
        if inside_host and target[0] == "gateway":
            return "the mini-program host must not import the gateway"
        if not inside_host and len(package) > 2 and target[0] != "sdk":
            return "a mini-program imports only sdk"
    return None


def python_files():
    for top in ("gateway", "messaging", "wallet", "miniapps", "storage", "sdk"):
        yield from (ROOT / top).rglob("*.py")


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
    }
    for parts, imported in cases.items():
        assert forbidden(ROOT.joinpath(*parts), imported), (parts, imported)
    assert forbidden(ROOT / "gateway" / "x.py", "messaging.context") is None
    assert forbidden(ROOT / "miniapps" / "poll" / "app.py", "sdk") is None
