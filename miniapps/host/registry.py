"""The catalogue: built-in mini-programs discovered at start-up, one folder with a manifest each."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent.parent  # miniapps/
NOT_APPS = {"host", "__pycache__"}


@dataclass(frozen=True)
class AppEntry:
    app_id: str
    folder: Path | None  # None for a remote app (it runs elsewhere, reached over HTTPS)
    manifest: dict[str, Any]
    kind: str = "hosted"  # or "remote"
    # Why the app cannot run on this server (``missing_requirement: requests>=2``), or None.
    unavailable: str | None = None

    @property
    def commands(self) -> list[str]:
        return [c["name"] for c in self.manifest.get("commands", [])]

    @property
    def permissions(self) -> set[str]:
        return set(self.manifest.get("permissions", []))

    def view(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "id": self.app_id,
            "name": m["name"],
            "version": m["version"],
            "description": m.get("description", ""),
            "commands": m.get("commands", []),
            "permissions": m.get("permissions", []),
            "kind": self.kind,
            # Clients show "Open" for apps with a web view (opened through …/launch).
            "webview": bool((m.get("webview") or {}).get("entry")),
            "unavailable": self.unavailable,
            "icon_url": self.icon_url,
        }

    @property
    def icon_url(self) -> str | None:
        """Where a client loads the app's icon: a hosted app's file of ``web/``, served at
        ``/miniapps/<id>/web/<file>`` (a path on this server), a remote app's https:// URL."""
        icon = self.manifest.get("icon")
        if not isinstance(icon, str):
            return None
        if icon.startswith("https://"):
            return icon
        if self.folder is None or not icon.startswith("web/"):  # a remote app's web/ path
            return None
        return f"/miniapps/{self.app_id}/{icon}"


def discover(folder: Path = BUILTIN_DIR) -> tuple[dict[str, AppEntry], dict[str, str]]:
    """Every valid app under ``folder``, and the reason each invalid one was refused."""
    from sdk.manifest import ManifestError, load_manifest, missing_requirement

    apps: dict[str, AppEntry] = {}
    refused: dict[str, str] = {}
    for app_dir in sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in NOT_APPS):
        if not (app_dir / "manifest.json").exists():
            continue
        try:
            manifest = load_manifest(app_dir)
        except ManifestError as exc:
            refused[app_dir.name] = str(exc)
            log.error("mini-program %s refused: %s", app_dir.name, exc)
            continue
        # A package the app imports is missing: listed, but disabled with the reason.
        missing = missing_requirement(manifest)
        unavailable = f"missing_requirement: {missing}" if missing else None
        if unavailable:
            log.error("mini-program %s disabled: %s", app_dir.name, unavailable)
        apps[manifest["id"]] = AppEntry(manifest["id"], app_dir, manifest, unavailable=unavailable)
    return apps, refused
