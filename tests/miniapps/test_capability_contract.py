"""The capability contract, host against simulator: for every capability of
``sdk.capabilities.CAPABILITIES`` and every case of ``tests/sdk/capability_cases.py`` (valid
params, hand-written invalid ones, and invalid ones generated from the params schema: each
required param missing, each of a wrong type, each limit crossed), the host of a running gateway
and the simulator give the same answer — the same error code, or both a result with the same
keys and value types. The simulator is a faithful host by construction; this keeps it so.

Both sides run the ``contract`` test app (``tests/miniapps/apps/contract``, every permission,
``events.emits: ["contract.done"]``, ``http.allowed_domains: ["127.0.0.1"]``), invoked by a
member of a conversation that has the app, who granted every scope. The host side is the
``host_capability`` fixture of ``tests/miniapps/conftest.py``: ``await call(method, params)``
gives ``("ok", result)`` or ``("error", code)``, like ``Simulator.call_capability``.

What cannot match offline, and how it is made to: ``http.fetch`` goes to a real local server on
the host side and to ``sim.fake_http`` for the same URL on the simulator's (header *names*
differ, so a result is compared by its keys and value types only); ids differ between the
worlds, so a case naming one (``"$card"``, ``"$me"``, ``"$version"``, ``"$media"``,
``"$ephemeral"``) gets each side's own;
``payments.refund`` can only be compared on a payment neither side has (``not_found``), since
paying needs a user's confirmation in the wallet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sdk.capabilities import CAPABILITIES
from sdk.simulator import Simulator
from tests.sdk.capability_cases import CARD, PNG_UPLOAD, all_cases, resolve

CONTRACT_APP = Path(__file__).resolve().parent / "apps" / "contract"


@pytest.fixture
async def fetch_url(aiohttp_server) -> str:
    """A URL on 127.0.0.1 (in the contract app's ``http.allowed_domains``) answering any
    method with a short text."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="contract ok")

    app = web.Application()
    app.router.add_route("*", "/contract", answer)
    server = await aiohttp_server(app)
    return str(server.make_url("/contract"))


def simulated(url: str):
    """The simulator's side: the same app, a member of a chat calling capabilities."""
    sim = Simulator(CONTRACT_APP)
    sim.fake_http(url, body="contract ok", headers={"Content-Type": "text/plain"})
    ann = sim.user("ann")
    chat = sim.conversation(members=[ann, "bea"])

    async def call(method: str, params: dict) -> tuple[str, Any]:
        return await sim.call_capability(ann, chat, method, params)

    return call


class World:
    """One side's values for the placeholders of the cases."""

    def __init__(self, call, url: str) -> None:
        self.call = call
        self.values: dict[str, Any] = {"$url": url}

    async def resolve(self, params: dict) -> dict:
        text = repr(params)
        if "$me" in text and "$me" not in self.values:
            outcome, profile = await self.call("users.profile", {})
            assert outcome == "ok", profile
            self.values["$me"] = profile["id"]
        if "$card" in text and "$card" not in self.values:
            outcome, posted = await self.call("messages.send_card", {"card": CARD})
            assert outcome == "ok", posted
            self.values["$card"] = posted["message_id"]
        if "$ephemeral" in text and "$ephemeral" not in self.values:
            outcome, shown = await self.call("messages.reply_ephemeral", {"card": CARD})
            assert outcome == "ok", shown
            self.values["$ephemeral"] = shown["ephemeral_id"]
        if "$media" in text and "$media" not in self.values:
            outcome, uploaded = await self.call("media.upload", PNG_UPLOAD)
            assert outcome == "ok", uploaded
            self.values["$media"] = uploaded["media_id"]
        if "$stream" in text and "$stream" not in self.values:
            outcome, started = await self.call("messages.stream_start", {"text": "So far"})
            assert outcome == "ok", started
            self.values["$stream"] = started["message_id"]
        if "$version" in text:  # read each time: a valid group_state.set moves it on
            outcome, state = await self.call("group_state.get", {})
            assert outcome == "ok", state
            self.values["$version"] = state["version"]
        return resolve(params, self.values)


def shape(answer: tuple[str, Any]) -> tuple[str, Any]:
    """What must be equal on both sides: an error's code, or a result's keys and the type of
    each value (the values themselves are each world's own: ids, times, header names)."""
    outcome, value = answer
    if outcome == "error" or not isinstance(value, dict):
        return answer
    return outcome, {key: type(item).__name__ for key, item in sorted(value.items())}


@pytest.mark.parametrize("name", sorted(CAPABILITIES))
async def test_the_host_and_the_simulator_answer_alike(name, host_capability, fetch_url):
    host = World(host_capability, fetch_url)
    simulator = World(simulated(fetch_url), fetch_url)
    mismatches = []
    for label, valid, params in all_cases(name):
        host_answer = await host.call(name, await host.resolve(params))
        sim_answer = await simulator.call(name, await simulator.resolve(params))
        if shape(host_answer) != shape(sim_answer):
            mismatches.append(
                f"{name} {label} ({'valid' if valid else 'invalid'}): "
                f"host {shape(host_answer)} != simulator {shape(sim_answer)}"
            )
    assert not mismatches, "\n".join(mismatches)
