"""A storage quota set in the manifest (``storage.quota_bytes``, 64 KiB to 1 GiB, default 1 MiB):
the simulator takes it from the manifest unless told otherwise, refuses past it with the host's
message — the ``bigkeeper`` test app, whose report tests/miniapps/test_storage_quota.py checks
on the platform — and the manifest refuses a quota out of bounds or not an integer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk import App
from sdk._capability_table import (
    STORAGE_QUOTA_BYTES,
    STORAGE_QUOTA_MAX_BYTES,
    STORAGE_QUOTA_MIN_BYTES,
)
from sdk.errors import ManifestError
from sdk.manifest import _validator, storage_quota, validate_manifest
from sdk.simulator import Simulator

APPS = Path(__file__).resolve().parents[1] / "miniapps" / "apps"
BIGKEEPER = APPS / "bigkeeper"
QUOTA = 131072  # bigkeeper's manifest
# b0..b5 (2 + 20 002 bytes each) fit in 128 KiB, b6 does not; overwriting b0 fits, and so does
# b6 once b1 is deleted; then "one-more" does not.
EXPECTED_REPORT = {
    "stored": 6,
    "refused": {
        "code": "quota_exceeded",
        "message": f"this app's storage is limited to {QUOTA} bytes",
    },
    "refused_key": None,
    "overwrite": "ok",
    "after_delete": "ok",
    "then": "quota_exceeded",
}
BASE = {"id": "quota", "name": "Quota", "version": "1.0.0"}


def texts(sim, chat):
    return [m["text"] for m in sim.messages(chat) if m["type"] == "text"]


async def fill(sim: Simulator) -> dict:
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann])
    await sim.command(ann, chat, "/fill")
    (text,) = texts(sim, chat)
    return json.loads(text.removeprefix("big: "))


async def test_the_simulator_takes_the_quota_from_the_manifest():
    sim = Simulator(BIGKEEPER)
    assert sim.storage_quota_bytes == QUOTA
    assert await fill(sim) == EXPECTED_REPORT
    blobs = sim.storage("blobs")
    assert sorted(blobs) == ["b0", "b2", "b3", "b4", "b5", "b6"]
    assert blobs["b0"] == "z" * 20000 and blobs["b6"] == "w" * 20000


async def test_an_explicit_quota_overrides_the_manifest():
    report = await fill(Simulator(BIGKEEPER, storage_quota_bytes=STORAGE_QUOTA_BYTES))
    # 52 values of 20 004 bytes fit in 1 MiB, the 53rd does not
    assert report["stored"] == 52
    assert report["refused"]["message"] == "this app's storage is limited to 1048576 bytes"


async def test_without_quota_bytes_the_quota_is_one_mib():
    manifest = {**BASE, "permissions": ["storage.put"]}
    sim = Simulator(App("quota"), manifest=manifest)
    assert sim.storage_quota_bytes == STORAGE_QUOTA_BYTES == 1024 * 1024
    stored = 0
    while stored < 40:
        params = {"collection": "c", "key": f"k{stored:02}", "value": "x" * 60000}
        outcome, _ = await sim.call_capability(None, None, "storage.put", params)
        if outcome != "ok":
            break
        stored += 1
    assert (outcome, stored) == ("error", 17)  # 17 values of 60 005 bytes fit in 1 MiB, 18 do not


async def test_a_manifest_given_with_an_app_sets_the_quota():
    manifest = {**BASE, "permissions": ["storage.put"], "storage": {"quota_bytes": 65536}}
    sim = Simulator(App("quota"), manifest=manifest)
    assert sim.storage_quota_bytes == 65536
    put = {"collection": "c", "key": "a", "value": "x" * 60000}
    assert (await sim.call_capability(None, None, "storage.put", put))[0] == "ok"
    put = {"collection": "c", "key": "b", "value": "x" * 6000}
    assert await sim.call_capability(None, None, "storage.put", put) == (
        "error",
        "quota_exceeded",
    )
    assert sorted(sim.storage("c")) == ["a"]


@pytest.mark.parametrize(
    ("quota", "problem"),
    [
        (0, "storage.quota_bytes: 0 is less than the minimum of 65536"),
        (-1, "storage.quota_bytes: -1 is less than the minimum of 65536"),
        (65535, "storage.quota_bytes: 65535 is less than the minimum of 65536"),
        ("x", "storage.quota_bytes: 'x' is not of type 'integer'"),
        ("65536", "storage.quota_bytes: '65536' is not of type 'integer'"),
        (65536.5, "storage.quota_bytes: 65536.5 is not of type 'integer'"),
        (None, "storage.quota_bytes: None is not of type 'integer'"),
        (True, "storage.quota_bytes: True is not of type 'integer'"),
        (False, "storage.quota_bytes: False is not of type 'integer'"),
        (
            2**30 + 1,
            "storage.quota_bytes: 1073741825 is greater than the maximum of 1073741824",
        ),
    ],
)
def test_a_bad_quota_is_refused_naming_the_field(quota, problem):
    with pytest.raises(ManifestError) as refused:
        validate_manifest({**BASE, "storage": {"quota_bytes": quota}})
    assert str(refused.value) == problem


@pytest.mark.parametrize("quota", [65536, 1048576, 2**30])
def test_a_quota_within_bounds_is_taken(quota):
    manifest = validate_manifest({**BASE, "storage": {"quota_bytes": quota}})
    assert storage_quota(manifest) == quota


def test_the_default_and_the_schema_bounds_are_the_named_limits():
    assert storage_quota(validate_manifest(BASE)) == STORAGE_QUOTA_BYTES
    assert storage_quota(validate_manifest({**BASE, "storage": {"indexes": []}})) == (
        STORAGE_QUOTA_BYTES
    )
    schema = _validator("manifest.schema.json").schema
    quota = schema["properties"]["storage"]["properties"]["quota_bytes"]
    assert (quota["minimum"], quota["maximum"]) == (
        STORAGE_QUOTA_MIN_BYTES,
        STORAGE_QUOTA_MAX_BYTES,
    )
