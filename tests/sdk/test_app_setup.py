"""App setup in the simulator: ``Simulator(config=...)`` and ``sim.grant_role`` give the app
``ctx.config`` and ``ctx.roles`` (through ``app.setup``, as under the host), only for names
the manifest declares; the manifest's ``config``/``roles``/``requirements`` are validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk.errors import ManifestError
from sdk.manifest import missing_requirement, validate_manifest
from sdk.simulator import Simulator

FXDESK = Path(__file__).resolve().parents[1] / "miniapps" / "apps" / "fxdesk"
SERVICER = Path(__file__).resolve().parents[1] / "miniapps" / "apps" / "servicer"
BASE = {"id": "fx", "name": "Fx", "version": "1.0.0"}


async def test_config_and_roles_reach_the_handler():
    sim = Simulator(FXDESK, config={"api_key": "k-1", "feed_url": "https://f.example"})
    ann, bea = sim.user("ann"), sim.user("bea")
    chat = sim.conversation(members=[ann, bea])
    sim.grant_role(bea, "merchant")
    await sim.command(bea, chat, "/fx")
    await sim.command(ann, chat, "/fx")
    assert [m["text"] for m in sim.messages(chat)] == [
        "key=k-1 url=https://f.example roles=merchant merchant=True env_leak=False",
        "key=k-1 url=https://f.example roles=- merchant=False env_leak=False",
    ]
    assert [c["method"] for c in sim.calls].count("app.setup") == 2

    # A change applies to the next invocation.
    sim.set_config("api_key", None)
    sim.revoke_role(bea, "merchant")
    await sim.command(bea, chat, "/fx")
    assert sim.messages(chat)[-1]["text"] == "key=None url=https://f.example roles=- " + (
        "merchant=False env_leak=False"
    )


async def test_app_setup_capability_and_its_refusals():
    sim = Simulator(FXDESK, config={"api_key": "k-1"})
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    sim.grant_role(ann, "auditor")
    assert await sim.call_capability(ann, chat, "app.setup", {}) == (
        "ok",
        {"config": {"api_key": "k-1"}, "roles": ["auditor"]},
    )
    # An app that declares neither has no app.setup permission.
    plain = Simulator(SERVICER)
    who = plain.user("ann")
    outcome = await plain.call_capability(who, plain.conversation(members=[who]), "app.setup", {})
    assert outcome == ("error", "permission_denied")


def test_undeclared_settings_and_roles_are_refused():
    with pytest.raises(ValueError, match="no setting 'other'"):
        Simulator(FXDESK, config={"other": "x"})
    sim = Simulator(FXDESK)
    with pytest.raises(ValueError, match="no role 'emperor'"):
        sim.grant_role(sim.user("ann"), "emperor")
    with pytest.raises(ValueError, match="1-4000"):
        sim.set_config("api_key", "")


def test_manifest_fields_defaults_and_problems():
    manifest = validate_manifest(BASE)
    assert manifest["config"] == [] and manifest["roles"] == [] and manifest["requirements"] == []
    assert "app.setup" not in manifest["permissions"]
    manifest = validate_manifest({**BASE, "config": [{"name": "api_key", "secret": True}]})
    assert manifest["config"] == [{"name": "api_key", "secret": True, "description": ""}]
    assert "app.setup" in manifest["permissions"]  # implied by config/roles
    with pytest.raises(ManifestError, match=r"roles\[1\].name: 'merchant' is declared twice"):
        validate_manifest({**BASE, "roles": [{"name": "merchant"}, {"name": "merchant"}]})
    with pytest.raises(ManifestError, match=r"config\[0\].name"):
        validate_manifest({**BASE, "config": [{"name": "has space"}]})
    with pytest.raises(ManifestError, match=r"requirements\[0\]"):
        validate_manifest({**BASE, "requirements": ["; rm -rf /"]})


def test_missing_requirement_compares_versions():
    assert missing_requirement({"requirements": ["jsonschema>=1", "packaging"]}) is None
    assert missing_requirement({"requirements": ["jsonschema>=999"]}) == "jsonschema>=999"
    assert missing_requirement({"requirements": ["no-such-dist-aeth"]}) == "no-such-dist-aeth"
