"""Load an app folder: its validated manifest and the ``App`` its entry file defines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from sdk.app import App
from sdk.errors import AppLoadError
from sdk.manifest import load_manifest


def _forget_other_apps_modules(folder: Path) -> None:
    """Several apps loaded in one process (tests, the simulator) may each have a sibling module
    of the same name (``catalog.py``). When a module of another folder is cached under one of
    this app's sibling names, every cached module of this app's folder is dropped too, so the app
    imports one consistent set of its own modules (a sibling kept from an earlier load would hold
    the other instance of ``catalog``). Without such a clash nothing is dropped: loading the app
    again reuses its modules. An app already loaded keeps the modules it imported; import
    siblings at module level, not inside handlers, where a name could meanwhile mean another
    app's module."""
    names = {path.stem for path in folder.glob("*.py")}

    def folder_of(module) -> Path | None:
        origin = getattr(module, "__file__", None)
        return Path(origin).resolve().parent if origin else None

    cached = list(sys.modules.items())
    if not any(name in names and folder_of(m) not in (None, folder) for name, m in cached):
        return
    for name, module in cached:
        parent = folder_of(module)
        if parent == folder or (name in names and parent is not None):
            del sys.modules[name]


def load_app(app_dir: str | Path, *, check_folder_name: bool = True) -> tuple[App, dict[str, Any]]:
    """The module-level ``app`` of ``<app_dir>/<entry>`` and the validated manifest
    (``check_folder_name``: see ``load_manifest``).

    The folder goes first on ``sys.path`` so the entry file can import its sibling modules.
    Raises ``ManifestError`` for a bad manifest, ``AppLoadError`` when the entry file fails to
    import or defines no ``App`` named ``app``.
    """
    folder = Path(app_dir).resolve()
    manifest = load_manifest(folder, check_folder_name=check_folder_name)
    if manifest["remote"] is not None:
        raise AppLoadError(f"{manifest['id']} is a remote app: it runs on its own server")
    entry = folder / manifest["entry"]
    module_name = f"aetherial_app_{manifest['id'].replace('-', '_')}"
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    sys.path.insert(0, str(folder))  # first: its sibling modules win over another app's
    _forget_other_apps_modules(folder)
    spec = importlib.util.spec_from_file_location(module_name, entry)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot load {entry}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise AppLoadError(f"{entry.name} failed to import: {type(exc).__name__}: {exc}") from exc
    app = getattr(module, "app", None)
    if not isinstance(app, App):
        raise AppLoadError(f"{entry.name} must define a module-level `app = App(...)`")
    if app.app_id is None:
        app.app_id = manifest["id"]
    elif app.app_id != manifest["id"]:
        raise AppLoadError(f"App({app.app_id!r}) does not match the manifest id {manifest['id']!r}")
    return app, manifest
