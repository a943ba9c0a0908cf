"""Manifests and cards: load and validate them against the JSON Schemas in ``sdk/schemas/``.

Every error names the field at fault first — ``permissions[2]: 'messages.teleport' is not one
of …``, ``id: must equal the folder name 'poll'`` — so a developer sees what to fix.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from sdk._capability_services import (
    AI_CHAT_PERMISSION,
    AI_EVENT,
    AI_EVENT_PREFIX,
    TOOL_PARAMETERS_MAX_BYTES,
    WEBHOOK_EVENT,
    WEBHOOK_NAME_PATTERN,
    WEBHOOK_PERMISSION,
)
from sdk._capability_table import STORAGE_QUOTA_BYTES
from sdk.addressing import MESSAGE_RECEIVED
from sdk.errors import CardError, ManifestError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
MANIFEST_FILE = "manifest.json"
DEFAULT_ENTRY = "app.py"
PAYMENT_EVENT_PREFIX = "payment."  # reserved for the host's payment events
# Events only the host sends: an app may accept call.* and subscription.* (declared in
# events.accepts), never emit them — even an app whose id is "call" or "subscription".
HOST_EVENT_PREFIXES = (PAYMENT_EVENT_PREFIX, "call.", "subscription.", "transfer_request.")
SETUP_PERMISSION = "app.setup"  # implied by a manifest's ``config`` or ``roles``
WEBHOOK_EVENT_PREFIX = "webhook."  # the host's webhook deliveries (webhook.received)
# A hosted app's web view may be a page of its own ``web/`` folder, served by the platform at
# ``/miniapps/<id>/web/<path>`` (``webview.entry: "web/index.html"``).
WEB_FOLDER = "web"


def webview_page(manifest: dict[str, Any]) -> str | None:
    """The path inside the app folder of a hosted web view's entry page (``web/index.html``),
    or None when the web view is an external URL or there is none."""
    webview = manifest.get("webview")
    entry = webview.get("entry") if isinstance(webview, dict) else None
    if not isinstance(entry, str) or not entry.startswith(WEB_FOLDER + "/"):
        return None
    return entry


def _webview_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a hosted web view's entry. The schema allows only a file name of
    ``web/`` (``web/index.html``: no subfolder, no ``..``, no hidden file, no query)."""
    if webview_page(data) is not None and data.get("remote") is not None:
        return "webview.entry: a remote app's web view is an https:// URL"
    return None


# An app's icon in the catalogue: a hosted app's small image in ``web/`` (served like its pages;
# no SVG, which may carry scripts), a remote app's https:// URL.
ICON_TYPES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WebP"}
ICON_MAX_BYTES = 64 * 1024
_ICON_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.~-]*")  # as the schema's icon_path


def icon_file(manifest: dict[str, Any]) -> str | None:
    """The path inside the app folder of a hosted app's icon (``web/icon.png``), or None when
    the icon is an https:// URL or there is none."""
    icon = manifest.get("icon")
    if not isinstance(icon, str) or not icon.startswith(WEB_FOLDER + "/"):
        return None
    return icon


def _icon_problem(data: Any) -> str | None:
    """What is wrong with an icon, said more plainly than the schema's "not valid under any of
    the given schemas" (which it replaces)."""
    icon = data.get("icon") if isinstance(data, dict) else None
    if not isinstance(icon, str):
        return None
    if icon.startswith("https://"):
        return None
    if data.get("remote") is not None:
        return "icon: a remote app's icon is an https:// URL"
    if not icon.startswith(WEB_FOLDER + "/"):
        return f"icon: {icon!r}: a file of web/ (web/icon.png) or an https:// URL"
    if not _ICON_NAME.fullmatch(icon[len(WEB_FOLDER) + 1 :]):
        return f"icon: {icon!r}: a file directly in web/ (no subfolder, no hidden file)"
    if Path(icon).suffix not in ICON_TYPES:
        return f"icon: {icon!r}: a .png, .jpg, .jpeg or .webp file (no SVG: it may carry scripts)"
    return None


def _image_type(head: bytes) -> str | None:
    """The image format the file's first bytes say (its magic number), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def _check_icon_file(folder: Path, manifest: dict[str, Any]) -> None:
    """A hosted app's icon must be a file directly in its ``web/`` folder, at most 64 KiB, in
    the format its extension names (served with that content type: a mislabelled file would
    not show)."""
    icon = icon_file(manifest)
    if icon is None:
        if manifest.get("icon") is not None and manifest["remote"] is None:
            raise ManifestError("icon: a hosted app's icon is a file of its web/ folder")
        return
    web = (folder / WEB_FOLDER).resolve()
    path = (folder / icon).resolve()
    if not path.is_relative_to(web) or not path.is_file():
        raise ManifestError(f"icon: file {icon!r} not found in {folder}")
    size = path.stat().st_size
    if size > ICON_MAX_BYTES:
        raise ManifestError(f"icon: {icon!r} is {size} bytes (at most {ICON_MAX_BYTES})")
    with path.open("rb") as file:
        found = _image_type(file.read(12))
    expected = ICON_TYPES[path.suffix]
    if found != expected:
        raise ManifestError(f"icon: {icon!r} is not a {expected} image")


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def capabilities() -> list[str]:
    """Every capability (= permission name) a manifest may list, as PROTOCOL.md defines them."""
    schema = _validator("manifest.schema.json").schema
    return list(schema["properties"]["permissions"]["items"]["enum"])


def _field_path(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: ValidationError, root_name: str) -> str:
    where = _field_path(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{where + '.' if where else ''}{missing}: is required"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        field = f"{where + '.' if where else ''}{extra[0] if extra else '?'}"
        return f"{field}: unknown field (allowed: {', '.join(allowed)})"
    return f"{where or root_name}: {error.message}"


def _schema_problems(name: str, data: Any, root_name: str) -> list[str]:
    errors = sorted(_validator(name).iter_errors(data), key=lambda e: list(map(str, e.path)))
    return [_describe(error, root_name) for error in errors]


def validate_manifest(data: Any, folder_name: str | None = None) -> dict[str, Any]:
    """Check a manifest against ``manifest.schema.json`` and the rules a schema cannot express,
    and return a copy with every optional field filled with its default.

    ``folder_name``: when given, ``id`` must equal it (an app's folder is named after its id).
    ``payment.*`` event names are refused in ``events.emits`` and ``events.accepts``: only the
    host sends them (to apps with the ``payments.request`` permission, undeclared).
    Raises ``ManifestError`` whose message names the field(s) at fault, e.g.
    ``permissions[2]: 'messages.teleport' is not one of […]``.
    """
    problems = _schema_problems("manifest.schema.json", data, "manifest")
    icon_problem = _icon_problem(data)
    if icon_problem is not None:
        problems = [p for p in problems if not p.startswith("icon:")] + [icon_problem]
    if not problems:
        app_id = data["id"]
        if folder_name is not None and app_id != folder_name:
            problems.append(f"id: must equal the folder name {folder_name!r}")
        names = [command["name"] for command in data.get("commands", [])]
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.append(f"commands[{index}].name: {name!r} is declared twice")
        # An app emits only events in its own namespace, so no app can forge another's events
        # (a fake "shop.order_paid" must not enrol anybody in a course). payment.* events come
        # from the host's payment service only — even for an app whose id is "payment" — and
        # reach the apps with the payments.request permission without being declared.
        events = data.get("events", {})
        for field in ("emits", "accepts"):
            for index, name in enumerate(events.get(field, [])):
                if name.startswith(PAYMENT_EVENT_PREFIX):
                    problems.append(
                        f"events.{field}[{index}]: {name!r}: payment.* events come only from"
                        " the host"
                    )
                elif field == "emits" and name.startswith(HOST_EVENT_PREFIXES):
                    problems.append(
                        f"events.emits[{index}]: {name!r}: call.*, subscription.* and "
                        "transfer_request.* events come only from the host"
                    )
                elif field == "emits" and not name.startswith(app_id + "."):
                    problems.append(f"events.emits[{index}]: {name!r} must start with '{app_id}.'")
        for field in ("config", "roles"):
            declared = [item["name"] for item in data.get(field, [])]
            for index, name in enumerate(declared):
                if name in declared[:index]:
                    problems.append(f"{field}[{index}].name: {name!r} is declared twice")
        webview_problem = _webview_problem(data)
        if webview_problem is not None:
            problems.append(webview_problem)
        if "http.fetch" in data.get("permissions", []) and not data.get("http", {}).get(
            "allowed_domains"
        ):
            problems.append("http.allowed_domains: http.fetch needs at least one allowed domain")
        problems.extend(_webhook_problems(data))
        problems.extend(_tool_problems(data))
        problems.extend(_ai_problems(data))
    if problems:
        raise ManifestError("; ".join(problems))
    manifest = copy.deepcopy(data)
    manifest.setdefault("description", "")
    manifest.setdefault("permissions", [])
    manifest.setdefault("commands", [])
    events = manifest.setdefault("events", {})
    events.setdefault("emits", [])
    events.setdefault("accepts", [])
    manifest.setdefault("http", {}).setdefault("allowed_domains", [])
    manifest.setdefault("webview", None)
    manifest.setdefault("icon", None)
    manifest.setdefault("remote", None)
    manifest.setdefault("entry", DEFAULT_ENTRY)
    manifest.setdefault("requirements", [])
    manifest.setdefault("webhooks", [])
    manifest.setdefault("tools", [])
    manifest["config"] = [
        {
            "name": c["name"],
            "secret": c.get("secret", False),
            "description": c.get("description", ""),
        }
        for c in manifest.get("config", [])
    ]
    manifest["roles"] = [
        {"name": r["name"], "description": r.get("description", "")}
        for r in manifest.get("roles", [])
    ]
    # An app that declares settings or roles may read them (``app.setup``) without listing it.
    if (manifest["config"] or manifest["roles"]) and SETUP_PERMISSION not in manifest[
        "permissions"
    ]:
        manifest["permissions"].append(SETUP_PERMISSION)
    return manifest


def _webhook_problems(data: dict[str, Any]) -> list[str]:
    """Inbound webhooks (``sdk.webhooks``): each declared name matches the pattern to its very
    end (the schema's ``$`` also allows a final newline), declaring any needs the
    ``webhooks.url`` permission and ``webhook.received`` in ``events.accepts`` (every delivery
    is that event), and no app emits ``webhook.*`` (only the host sends them)."""
    problems = []
    names = data.get("webhooks") or []
    for index, name in enumerate(names):
        if not WEBHOOK_NAME_PATTERN.fullmatch(name):
            problems.append(f"webhooks[{index}]: {name!r} is not 1-32 characters of [a-z0-9_.-]")
    accepts = data.get("events", {}).get("accepts", [])
    if names and WEBHOOK_PERMISSION not in data.get("permissions", []):
        problems.append(f"webhooks: declaring webhooks needs the {WEBHOOK_PERMISSION!r} permission")
    if names and WEBHOOK_EVENT not in accepts:
        problems.append(
            f"events.accepts: webhooks are delivered as the event {WEBHOOK_EVENT!r}: accept it"
        )
    for index, name in enumerate(data.get("events", {}).get("emits", [])):
        if name.startswith(WEBHOOK_EVENT_PREFIX):
            problems.append(
                f"events.emits[{index}]: {name!r}: webhook.* events come only from the host"
            )
    return problems


def _ai_problems(data: dict[str, Any]) -> list[str]:
    """The platform's model (``ai.chat``): every answer comes back as the host event
    ``ai.completed``, so an app with the permission accepts it (else it could never read an
    answer), and no app emits ``ai.*`` (only the host sends them)."""
    problems = []
    events = data.get("events", {})
    if AI_CHAT_PERMISSION in data.get("permissions", []) and AI_EVENT not in events.get(
        "accepts", []
    ):
        problems.append(
            f"events.accepts: {AI_CHAT_PERMISSION}'s answers come as the event {AI_EVENT!r}: "
            "accept it"
        )
    for index, name in enumerate(events.get("emits", [])):
        if name.startswith(AI_EVENT_PREFIX):
            problems.append(f"events.emits[{index}]: {name!r}: ai.* events come only from the host")
    return problems


def _tool_problems(data: dict[str, Any]) -> list[str]:
    """Tools other apps may call (``apps.call_tool``; ``@app.tool``): only read-only ones may
    be declared — a tool never buys, books or pays; that is a card a person taps — each name
    once, each ``parameters`` a JSON Schema of type object (what a model fills in) of at most
    ``TOOL_PARAMETERS_MAX_BYTES``. And no app emits ``message.*``: ``message.received`` (a
    person's message addressed to the app) comes only from the host."""
    problems = []
    names = []
    for index, tool in enumerate(data.get("tools") or []):
        where = f"tools[{index}]"
        if tool["read_only"] is not True:
            problems.append(
                f"{where}.read_only: only read-only tools may be declared (a tool never acts: "
                "buying, booking or paying is a card a person taps)"
            )
        if tool["name"] in names:
            problems.append(f"{where}.name: {tool['name']!r} is declared twice")
        names.append(tool["name"])
        parameters = tool["parameters"]
        if parameters.get("type") != "object":
            problems.append(f'{where}.parameters: a JSON Schema with "type": "object"')
            continue
        try:
            Draft202012Validator.check_schema(parameters)
        except SchemaError as exc:
            problems.append(f"{where}.parameters: not a valid JSON Schema ({exc.message})")
            continue
        size = len(json.dumps(parameters, separators=(",", ":")).encode())
        if size > TOOL_PARAMETERS_MAX_BYTES:
            problems.append(
                f"{where}.parameters: {size} bytes, at most {TOOL_PARAMETERS_MAX_BYTES}"
            )
    prefix = MESSAGE_RECEIVED.split(".", 1)[0] + "."
    for index, name in enumerate(data.get("events", {}).get("emits", [])):
        if name.startswith(prefix):
            problems.append(
                f"events.emits[{index}]: {name!r}: message.* events come only from the host"
            )
    return problems


def storage_quota(manifest: dict[str, Any]) -> int:
    """The bytes an app may store, keys and values together: its manifest's
    ``storage.quota_bytes`` (64 KiB to 1 GiB), else 1 MiB (``STORAGE_QUOTA_BYTES``)."""
    return int((manifest.get("storage") or {}).get("quota_bytes", STORAGE_QUOTA_BYTES))


def missing_requirement(manifest: dict[str, Any]) -> str | None:
    """The first of the manifest's ``requirements`` this Python lacks — ``"requests>=2"`` when
    requests is absent or older (``packaging`` compares versions when it is installed; without
    it only the presence of the distribution is checked) — or None when all are there."""
    from importlib.metadata import PackageNotFoundError, version

    for requirement in manifest.get("requirements", []):
        name, specifier = _split_requirement(requirement)
        try:
            installed = version(name)
        except PackageNotFoundError:
            return requirement
        if specifier and not _satisfies(installed, specifier):
            return requirement
    return None


def _split_requirement(requirement: str) -> tuple[str, str]:
    text = requirement.strip()
    for index, char in enumerate(text):
        if char in "<>=!~ ":
            return text[:index], text[index:].strip()
    return text, ""


def _satisfies(installed: str, specifier: str) -> bool:
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion
    except ImportError:  # no packaging: the distribution is there, that is all we can tell
        return True
    try:
        return SpecifierSet(specifier).contains(installed, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return False


def load_manifest(app_dir: str | Path, *, check_folder_name: bool = True) -> dict[str, Any]:
    """Read ``<app_dir>/manifest.json``, validate it (its ``id`` must equal the folder name
    unless ``check_folder_name`` is false — the runtime's view of a folder mounted elsewhere,
    e.g. at ``/app`` in a sandbox; a hosted app's entry file must exist, and so must its web
    view page and its icon — a PNG, JPEG or WebP of at most 64 KiB) and return it with
    defaults filled.

    Raises ``ManifestError`` naming the field at fault (``manifest.json: …`` when the file is
    missing or not JSON).
    """
    folder = Path(app_dir).resolve()
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{MANIFEST_FILE}: not found in {folder}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{MANIFEST_FILE}: not valid JSON ({exc})") from None
    manifest = validate_manifest(data, folder_name=folder.name if check_folder_name else None)
    if manifest["remote"] is None and not (folder / manifest["entry"]).is_file():
        raise ManifestError(f"entry: file {manifest['entry']!r} not found in {folder}")
    page = webview_page(manifest)
    if page is not None:
        web = (folder / WEB_FOLDER).resolve()
        path = (folder / page).resolve()
        if not path.is_relative_to(web) or not path.is_file():
            raise ManifestError(f"webview.entry: file {page!r} not found in {folder}")
    _check_icon_file(folder, manifest)
    return manifest


def validate_card(card: Any) -> dict[str, Any]:
    """Check a card (a dict, or a ``sdk.cards.Card``) against ``card.schema.json`` and return it
    as a dict, and the rules a schema cannot say well (a button has an ``action_id`` or
    ``opens``, not both). Raises ``CardError`` naming the field, e.g. ``buttons[0].style: 'red'
    is not one of ['primary', 'secondary', 'danger']``."""
    if hasattr(card, "to_dict"):
        card = card.to_dict()
    problems = _schema_problems("card.schema.json", card, "card")
    if not problems:
        problems = _button_problems(card.get("buttons", []))
    if problems:
        raise CardError("; ".join(problems))
    return card


def _button_problems(buttons: list[dict[str, Any]]) -> list[str]:
    """A button is a press (``action_id``, ``value``: the app gets an ``action``) or a link
    (``opens``, ``path``: the client opens the posting app's web view), never both — so a
    client cannot turn a link into a press the app did not expect, nor the other way round."""
    problems = []
    schema = _validator("card.schema.json").schema
    path_pattern = schema["properties"]["buttons"]["items"]["properties"]["path"]["pattern"]
    for index, button in enumerate(buttons):
        where = f"buttons[{index}]"
        # The schema's "$" also matches before a final newline (Python's re): not in a path.
        if "path" in button and not re.fullmatch(path_pattern, button["path"]):
            problems.append(f"{where}.path: {button['path']!r} does not match {path_pattern!r}")
        if "opens" in button:
            if "action_id" in button:
                problems.append(f"{where}: a button has an action_id or opens, not both")
            if "value" in button:
                problems.append(f"{where}.value: only a button with an action_id has a value")
        elif "action_id" not in button:
            problems.append(f"{where}.action_id: is required (or opens)")
        elif "path" in button:
            problems.append(f"{where}.path: only a button that opens a web view has a path")
    return problems
