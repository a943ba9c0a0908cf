"""``python run.py seed-demo``: a living super-app in one minute.

It starts the platform in this process on a free loopback port (the same ``create_app`` as
``run.py``, the configured database) and then acts like its users would, over HTTP: the demo
people sign up (or sign in, when they already exist), open a group, add the apps to it, top up
their wallets (development only) and each built-in app seeds its own sample data through its web
view (``demo.seed``, a view the app answers like any other: the data is the app's, made by the
app). Only the grant of an app role to a demo merchant goes through the host directly, as an
administrator would in the admin panel. Running it again changes nothing that is there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import create_app
from gateway.keys import MESSAGING, MINIAPPS
from miniapps.host import roles
from storage.config import Config

DEMO_PASSWORD = "demo-password-1"
PEOPLE = ("ana", "ben", "chen", "dara")
MERCHANT = "ana"  # opens the demo store
INSTRUCTOR = "chen"  # teaches the demo courses
GROUP_TITLE = "Weekend crew"
GROUP_APPS = ("poll", "shop", "courses", "health")
GROUP_APPS = (*GROUP_APPS, "crypto")  # the crypto app's paper exchange, in the demo group too
GROUP_APPS = (*GROUP_APPS, "travel")  # the group plans a trip together
GROUP_APPS = (*GROUP_APPS, "assistant")  # /ai and @assistant (answers once AI_* points at a model)
TOPUP = {"USD": 50_000, "EUR": 50_000}  # minor units each demo person gets (development only)
SEEDER = "system:seed-demo"  # who granted the demo roles, in the admin audit
# The demo practitioners of the health app (username → its demo profile), and their clinic group.
PRACTITIONERS = (("dr_silva", "gp"), ("dr_wang", "cardiology"), ("dr_miller", "paediatrics"))
CLINIC_TITLE = "Aetherial Clinic"
# The crypto app's demo traders (usernames; each is also its demo.seed profile): ben makes the
# market (asks and bids), dara bids — paper orders around the simulated market price.
CRYPTO_TRADERS = ("ben", "dara")


class SeedError(RuntimeError):
    """A step of the demo failed: the message says which and why."""


@dataclass
class DemoPerson:
    username: str
    user_id: str
    token: str


class Client:
    """The platform's public HTTP API, as one person."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def expect(self, method: str, path: str, token: str | None, body: Any, *ok: int) -> Any:
        status, answer = await self.call(method, path, token, body)
        if status not in ok:
            raise SeedError(f"{method} {path} answered {status}: {answer}")
        return answer


async def sign_in(client: Client, username: str) -> DemoPerson:
    """Sign in, signing up first when the account is not there yet."""
    login = {"login": username, "password": DEMO_PASSWORD}
    status, answer = await client.call("POST", "/api/v1/auth/login", None, login)
    if status != 200:
        await client.expect(
            "POST",
            "/api/v1/auth/register",
            None,
            {"username": username, "email": f"{username}@demo.invalid", "password": DEMO_PASSWORD},
            201,
        )
        answer = await client.expect("POST", "/api/v1/auth/login", None, login, 200)
    return DemoPerson(username, answer["user"]["id"], answer["access_token"])


async def open_group(client: Client, owner: DemoPerson, members: list[DemoPerson]) -> str:
    """The demo group (found by its title among the owner's chats, else created)."""
    listing = await client.expect("GET", "/api/v1/conversations", owner.token, None, 200)
    for conversation in listing["conversations"]:
        if conversation["type"] == "group" and conversation["title"] == GROUP_TITLE:
            return conversation["id"]
    body = {"type": "group", "title": GROUP_TITLE, "member_ids": [m.user_id for m in members]}
    created = await client.expect("POST", "/api/v1/conversations", owner.token, body, 201)
    return created["conversation"]["id"]


async def add_apps(client: Client, owner: DemoPerson, conversation_id: str) -> None:
    for app_id in GROUP_APPS:
        path = f"/api/v1/conversations/{conversation_id}/apps"
        await client.expect("POST", path, owner.token, {"app_id": app_id}, 200, 201)


async def top_up(client: Client, person: DemoPerson) -> bool:
    """Demo money, once per person and currency (the idempotency key); False when the server
    has no development top-up (production)."""
    for currency, amount in TOPUP.items():
        body = {"amount": amount, "currency": currency, "idempotency_key": f"demo-{currency}"}
        status, answer = await client.call("POST", "/api/v1/wallet/dev-topup", person.token, body)
        if status == 403 or answer.get("error", {}).get("code") == "dev_topup_disabled":
            return False
        if status not in (200, 201):
            raise SeedError(f"the demo top-up answered {status}: {answer}")
    return True


async def call_view(
    client: Client,
    person: DemoPerson,
    conversation_id: str,
    app_id: str,
    name: str,
    params: dict[str, Any] | None = None,
) -> Any:
    """Open the app's web view as ``person`` and call one of its views, as the page would."""
    launch = await client.expect(
        "POST",
        f"/api/v1/conversations/{conversation_id}/apps/{app_id}/launch",
        person.token,
        {},
        200,
        201,
    )
    answer = await client.expect(
        "POST",
        "/api/v1/webviews/call",
        person.token,
        {"token": launch["token"], "name": name, "params": params or {}},
        200,
    )
    return answer["result"]


async def seed_shop(app: web.Application, client: Client, people: dict, group_id: str) -> str:
    merchant = people[MERCHANT]
    await roles.do_grant_role(
        app[MINIAPPS].apps_catalogue,
        app[MESSAGING],
        SEEDER,
        "shop",
        "merchant",
        merchant.user_id,
    )
    result = await call_view(client, merchant, group_id, "shop", "demo.seed")
    return f"shop: {result.get('summary', result)}"


async def seed_courses(app: web.Application, client: Client, people: dict, group_id: str) -> str:
    instructor = people[INSTRUCTOR]
    await roles.do_grant_role(
        app[MINIAPPS].apps_catalogue,
        app[MESSAGING],
        SEEDER,
        "courses",
        "instructor",
        instructor.user_id,
    )
    result = await call_view(client, instructor, group_id, "courses", "demo.seed")
    created = result["created"]
    return (
        f"courses: {len(created)} created ({', '.join(created)})"
        if created
        else ("courses: already seeded")
    )


async def open_clinic(client: Client, doctors: list[DemoPerson]) -> str:
    """The demo practitioners' group (found by its title, else created) with the health app."""
    owner = doctors[0]
    listing = await client.expect("GET", "/api/v1/conversations", owner.token, None, 200)
    found = [
        c["id"]
        for c in listing["conversations"]
        if c["type"] == "group" and c["title"] == CLINIC_TITLE
    ]
    if found:
        clinic_id = found[0]
    else:
        body = {
            "type": "group",
            "title": CLINIC_TITLE,
            "member_ids": [d.user_id for d in doctors[1:]],
        }
        created = await client.expect("POST", "/api/v1/conversations", owner.token, body, 201)
        clinic_id = created["conversation"]["id"]
    path = f"/api/v1/conversations/{clinic_id}/apps"
    await client.expect("POST", path, owner.token, {"app_id": "health"}, 200, 201)
    return clinic_id


async def seed_health(app: web.Application, client: Client, people: dict, group_id: str) -> str:
    """Three demo practitioners (role ``practitioner``), each writing their own demo profile
    with weekly hours through the health app's ``demo.seed`` view, in their clinic group."""
    doctors = [await sign_in(client, username) for username, _ in PRACTITIONERS]
    clinic_id = await open_clinic(client, doctors)
    created = []
    for doctor, (username, profile) in zip(doctors, PRACTITIONERS, strict=True):
        await roles.do_grant_role(
            app[MINIAPPS].apps_catalogue,
            app[MESSAGING],
            SEEDER,
            "health",
            "practitioner",
            doctor.user_id,
        )
        result = await call_view(
            client, doctor, clinic_id, "health", "demo.seed", {"profile": profile}
        )
        if result["created"]:
            created.append(f"{username}: {result['name']}")
    if not created:
        return "health: already seeded"
    return f"health: {len(created)} practitioners created ({', '.join(created)})"


async def seed_crypto(app: web.Application, client: Client, people: dict, group_id: str) -> str:
    """The two demo traders each put their own paper orders on the crypto app's BTC/USDT and
    ETH/USDT books around the market price (the simulated market by default), through its
    ``demo.seed`` view in the demo group: the orders are theirs. Paper money only."""
    placed = []
    for name in CRYPTO_TRADERS:
        result = await call_view(
            client, people[name], group_id, "crypto", "demo.seed", {"trader": name}
        )
        if result["created"]:
            placed.append(f"{name}: {result['created']}")
    if not placed:
        return "crypto: already seeded"
    return f"crypto: paper orders placed ({', '.join(placed)})"


async def seed_travel(app: web.Application, client: Client, people: dict, group_id: str) -> str:
    """The demo group plans a trip with the travel app: ana starts it (``demo.seed`` step
    ``trip``: Lisbon, flights and a stay from the labelled sample provider in the plan, an
    activity vote), the others join through the trip's own ``trip.join`` view, then ana adds the
    shared expenses (step ``expenses``). Each call is the app's own; seeding again adds nothing."""
    organiser = people[MERCHANT]
    result = await call_view(client, organiser, group_id, "travel", "demo.seed", {"step": "trip"})
    if not result["created"]:
        return "travel: already seeded"
    for person in people.values():
        if person != organiser:
            await call_view(client, person, group_id, "travel", "trip.join")
    spent = await call_view(
        client, organiser, group_id, "travel", "demo.seed", {"step": "expenses"}
    )
    return f"travel: {result['summary']}; {spent['summary']}"


# Each built-in app's demo step, in order; later services add theirs here.
SEEDS: dict[str, Callable[[web.Application, Client, dict, str], Awaitable[str]]] = {
    "shop": seed_shop,
    "courses": seed_courses,
    "health": seed_health,
    "crypto": seed_crypto,
    "travel": seed_travel,
}


async def seed_demo(config: Config) -> list[str]:
    """Start the platform here, seed it, stop it; the lines to print."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            client = Client(session, f"http://127.0.0.1:{port}")
            people = {name: await sign_in(client, name) for name in PEOPLE}
            owner = people[MERCHANT]
            group_id = await open_group(client, owner, [p for p in people.values() if p != owner])
            await add_apps(client, owner, group_id)
            funded = all([await top_up(client, person) for person in people.values()])
            lines = [
                f"people: {', '.join(PEOPLE)} (password {DEMO_PASSWORD!r})",
                f"group: {GROUP_TITLE!r} with {', '.join(GROUP_APPS)}",
                "wallets: 500.00 USD and 500.00 EUR each"
                if funded
                else "wallets: not topped up (AETHERIAL_ENV is not development)",
            ]
            for step in SEEDS.values():
                lines.append(await step(app, client, people, group_id))
            return lines
    finally:
        await runner.cleanup()
