"""Health through the running platform: gateway nodes sharing MongoDB and Redis, the health app
as a real sandboxed process on each, people on real Socket.IO and HTTP clients, the video visit
between two real aiortc peers.

- Fifty patients, on two nodes, hold the same slot at once through the web view's call route:
  one hold, 49 ``slot_taken``; the holder pays the fee through the wallet and is booked (the
  ledger balanced). A hold left to run out is released once, however many firings of its
  expiry race on the two nodes; the slot is then someone else's, and a late firing leaves
  their hold alone.
- A video visit: booked, its 15-minute reminder (a platform timer) brings the appointment card
  with **Join video visit** to the patient's service chat; pressing it rings the patient and the
  practitioner in a chat the app opens for the two; both join and each receives the other's
  frames; the practitioner's visit note reaches the patient; the visit is done (``fulfilled``).

The app reads the system clock: where time must pass, the test moves the stored instants
instead (``e2e_helpers.expire_hold`` / ``bring_visit_to``).
"""

from __future__ import annotations

import asyncio
import secrets

from gateway.app import create_app
from gateway.keys import MESSAGING, MINIAPPS
from messaging.actions import service_chats
from miniapps.host.timers import LEASE_MS, TimerFiring
from storage.mongo import now_ms
from tests.calls.call_helpers import CallPeer
from tests.conftest import base_url, make_config, node_configs, start_nodes
from tests.helpers import eventually
from tests.messaging.chat_helpers import close_all, group, person
from tests.miniapps import timer_race
from tests.miniapps.health.e2e_helpers import (
    APP,
    MINUTE,
    action_ids,
    asked_to_pay,
    bring_visit_to,
    call,
    cards,
    consent,
    expire_hold,
    install,
    launch,
    live_timer,
    make_admin,
    own_group,
    page_call,
    profile,
    refused,
    service_chat,
    stored,
    stored_all,
    utc_date,
    window_soon,
    with_text,
)
from tests.miniapps.shop.e2e_helpers import button, ephemerals, events_of, grant_role, press, top_up
from tests.wallet.wallet_helpers import balance, check_ledger
from wallet.store.accounts import merchant_account

PATIENTS = 50
GROUPS = 5
FEE = 4000  # 40.00 USD


async def fire_racing(nodes, db, key: str, copies: int) -> None:
    """Fire the app's pending timer ``key`` now, ``copies`` + 1 times at once, half on each
    node (``tests.miniapps.timer_race``)."""
    timer = await live_timer(db, key)
    assert timer is not None and timer["state"] == "pending", key
    await timer_race.fire_racing(nodes, db, timer, copies)


async def fire_once_more(nodes, db, timer: dict) -> None:
    """One more (late) firing of a timer that already fired: a copy under another id."""
    copy = {
        **timer,
        "_id": f"{timer['_id']}.late",
        "key": f"{timer['key']}.late",
        "state": "firing",
        "token": secrets.token_hex(12),
        "lease_until": now_ms() + LEASE_MS,
        "attempts": 1,
    }
    await db["app_timers"].insert_one(copy)
    await TimerFiring(nodes[1].app[MINIAPPS])._fire(copy, copy["token"])
    assert await db["app_timers"].count_documents({"_id": copy["_id"]}) == 0  # done


async def test_fifty_patients_race_for_one_slot_and_an_expired_hold_frees_it_once(
    aiohttp_server, mongo_url, mongo_db_name, redis_url, tmp_path
):
    configs = node_configs(mongo_url, mongo_db_name, tmp_path, redis_url, jobs_interval=0.05)
    nodes = await start_nodes(aiohttp_server, configs)
    bases = [base_url(node) for node in nodes]
    db = nodes[0].app[MESSAGING].db
    admin, doctor = await person(bases[0]), await person(bases[1])
    patients = []
    for first in range(0, PATIENTS, 25):
        patients += await asyncio.gather(*(person(bases[i % 2]) for i in range(first, first + 25)))
    try:
        await make_admin(db, admin)
        await grant_role(admin, doctor, APP, "practitioner")
        per_group = PATIENTS // GROUPS
        rooms = []
        for index in range(GROUPS):
            members = patients[index * per_group : (index + 1) * per_group]
            cid = await group(doctor, members, f"Waiting room {index}")
            await install(doctor, cid)
            rooms += [(patient, cid) for patient in members]
        saved = await call(
            doctor,
            rooms[0][1],
            "practice.save",
            profile("Asia/Shanghai", fee={"amount": FEE, "currency": "USD"}),
        )
        doctor_id = saved["profile"]["id"]
        await asyncio.gather(*(consent(patient) for patient in patients))
        listing = await call(
            patients[0],
            rooms[0][1],
            "slots.list",
            {"practitioner_id": doctor_id, "from": utc_date(2), "days": 1},
        )
        first, second = listing["days"][0]["slots"][:2]
        assert first["text"].endswith("(UTC)")  # shown in the patients' zone

        # Everyone's page is open; all press the same time at once, half on each node.
        tokens = await asyncio.gather(*(launch(patient, cid) for patient, cid in rooms))
        answers = await asyncio.gather(
            *(
                page_call(
                    patient,
                    token,
                    "booking.hold",
                    {
                        "practitioner_id": doctor_id,
                        "start": first["start"],
                        "booking_key": f"race-{index:04d}",
                    },
                )
                for index, ((patient, _), token) in enumerate(zip(rooms, tokens, strict=True))
            )
        )
        held = [
            (patient, cid, body["result"]["appointment"])
            for (patient, cid), (status, body) in zip(rooms, answers, strict=True)
            if status == 200
        ]
        codes = [body["error"]["code"] for status, body in answers if status != 200]
        assert len(held) == 1, answers[:3]
        assert codes == ["slot_taken"] * (PATIENTS - 1)
        assert {body["error"]["message"] for status, body in answers if status != 200} <= {
            "Someone else has just taken that slot: pick another.",
            "That slot is in demand right now: pick another.",
        }
        [(holder, holder_cid, hold)] = held
        assert hold["status"] == "pending" and hold["start"] == first["start"]
        assert [a["id"] for a in await stored_all(db, "appointments")] == [hold["id"]]
        slot, _ = await stored(db, "slots", f"{doctor_id}:{first['start']}")
        assert (slot["appointment_id"], slot["state"]) == (hold["id"], "held")

        # The holder confirms: the wallet asks for the fee, she pays, she is booked.
        await top_up(holder, FEE)
        confirmed = await call(
            holder, holder_cid, "booking.confirm", {"appointment_id": hold["id"]}
        )
        payment = confirmed["payment"]
        assert (payment["status"], confirmed["appointment"]["status"]) == ("pending", "pending")
        [sheet] = await eventually(lambda: asked_to_pay(holder), what="the payment sheet")
        assert (sheet["id"], sheet["amount"], sheet["currency"]) == (
            payment["payment_id"],
            FEE,
            "USD",
        )
        paid = await holder.socket.call("payment.confirm", {"payment_id": sheet["id"]})
        assert paid["ok"] and paid["payment"]["status"] == "paid", paid

        async def booked():
            answer = await call(
                holder, holder_cid, "appointment.get", {"appointment_id": hold["id"]}
            )
            return answer["appointment"]["status"] == "booked" and answer["appointment"]

        appointment = await eventually(booked, what="the visit booked once paid")
        assert appointment["payment_id"] == sheet["id"]
        slot, _ = await stored(db, "slots", f"{doctor_id}:{first['start']}")
        assert (slot["appointment_id"], slot["state"]) == (hold["id"], "booked")
        assert await balance(holder) == 0
        balances = await check_ledger(db)
        assert balances[merchant_account(APP, "USD")] == FEE
        assert await live_timer(db, f"hold:{hold['id']}") is None  # the expiry: not needed now

        # A second slot, held and left: its 5 minutes run out, and its expiry fires four
        # times at once on the two nodes.
        leaver, leaver_cid = next((p, c) for p, c in rooms if p is not holder)
        left = (
            await call(
                leaver,
                leaver_cid,
                "booking.hold",
                {
                    "practitioner_id": doctor_id,
                    "start": second["start"],
                    "booking_key": "left-0001",
                },
            )
        )["appointment"]
        timer = await live_timer(db, f"hold:{left['id']}")
        assert (timer["name"], timer["due_at"]) == ("hold.expire", left["hold_until"])
        slot_key = f"{doctor_id}:{second['start']}"
        await expire_hold(db, left["id"])
        _, appointment_version = await stored(db, "appointments", left["id"])
        _, slot_version = await stored(db, "slots", slot_key)
        await fire_racing(nodes, db, f"hold:{left['id']}", copies=3)

        expired, version = await stored(db, "appointments", left["id"])
        assert (expired["status"], expired["cancel_reason"]) == ("cancelled", "hold_expired")
        assert [h["status"] for h in expired["history"]] == ["pending", "cancelled"]
        assert version == appointment_version + 1  # cancelled in one write
        freed, version = await stored(db, "slots", slot_key)
        assert (freed["state"], freed["appointment_id"], freed["freed"]) == (
            "free",
            None,
            left["id"],
        )
        assert version == slot_version + 1  # freed once
        assert await db["app_timers"].count_documents({"key": {"$regex": "^hold:"}}) == 0
        assert (
            await refused(leaver, leaver_cid, "booking.confirm", {"appointment_id": left["id"]})
            == "hold_expired"
        )

        # The time is free again: another patient holds it; a late firing of the old expiry
        # leaves their hold alone.
        taker, taker_cid = next((p, c) for p, c in rooms if p not in (holder, leaver))
        retaken = (
            await call(
                taker,
                taker_cid,
                "booking.hold",
                {
                    "practitioner_id": doctor_id,
                    "start": second["start"],
                    "booking_key": "take-0001",
                },
            )
        )["appointment"]
        assert retaken["status"] == "pending"
        await fire_once_more(nodes, db, timer)
        slot, _ = await stored(db, "slots", slot_key)
        assert (slot["appointment_id"], slot["state"]) == (retaken["id"], "held")
        still, _ = await stored(db, "appointments", retaken["id"])
        assert still["status"] == "pending"
        again, _ = await stored(db, "appointments", left["id"])
        assert [h["status"] for h in again["history"]] == ["pending", "cancelled"]
    finally:
        await close_all([admin, doctor, *patients])


ZONES = ("Europe/Lisbon", "Asia/Tokyo", "America/New_York")  # one is never near midnight


def rings_of(someone, call_id: str | None = None) -> list[dict]:
    return [
        data["call"]
        for data in events_of(someone, "call.ring")
        if call_id is None or data["call"]["id"] == call_id
    ]


async def test_a_video_visit_from_the_reminder_card_to_the_visit_note(
    aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", jobs_interval=0.05)
    server = await aiohttp_server(create_app(config))
    base, db = base_url(server), server.app[MESSAGING].db
    admin, doctor, patient = [await person(base) for _ in range(3)]
    peers: list[CallPeer] = []
    try:
        await make_admin(db, admin)
        await grant_role(admin, doctor, APP, "practitioner")
        practice, home = await own_group(doctor, "My practice"), await own_group(patient, "Me")
        for someone in (doctor, patient):
            await consent(someone)  # service messages: the cards and the reminders
        # Today, hours that begin in 16-17 minutes in the practitioner's zone.
        zone, window = next((z, w) for z in ZONES if (w := window_soon(z, 16, 60)))
        saved = await call(
            doctor, practice, "practice.save", profile(zone, weekly=[], exceptions=[window])
        )
        doctor_id = saved["profile"]["id"]
        listing = await call(patient, home, "slots.list", {"practitioner_id": doctor_id, "days": 2})
        slot = listing["days"][0]["slots"][0]
        assert slot["start"] > now_ms() + 15 * MINUTE

        held = await call(
            patient,
            home,
            "booking.hold",
            {"practitioner_id": doctor_id, "start": slot["start"], "booking_key": "visit-0001"},
        )
        aid = held["appointment"]["id"]
        answer = await call(patient, home, "booking.confirm", {"appointment_id": aid})
        assert answer["appointment"]["status"] == "booked" and "payment" not in answer  # free
        mine, theirs = service_chat(patient), service_chat(doctor)
        [card] = await eventually(
            lambda: with_text(patient, mine, "Your visit is booked."), what="the booked card"
        )
        assert card["card"]["title"] == "Appointment · Booked"
        assert "Not medical advice." in card["card"]["text"]
        assert "visit.join" not in action_ids(card)  # more than 15 minutes away
        assert await live_timer(db, f"rm15:{aid}") is not None
        assert await live_timer(db, f"rm24:{aid}") is None  # less than a day away
        assert await refused(doctor, practice, "visit.join", {"appointment_id": aid}) == (
            "too_early"
        )

        # Fifteen minutes before the visit, its reminder fires: the card, with Join.
        await bring_visit_to(db, aid, now_ms() + 10 * MINUTE)
        [reminder] = await eventually(
            lambda: with_text(patient, mine, "Your visit starts in 15 minutes."),
            what="the 15-minute reminder",
        )
        join = button(reminder, "visit.join")
        assert (join["label"], join["value"]) == ("Join video visit", aid)
        [for_doctor] = await eventually(
            lambda: with_text(doctor, theirs, "Your next visit starts in 15 minutes."),
            what="the practitioner's reminder",
        )
        assert {"visit.join", "visit.arrived"} <= set(action_ids(for_doctor))

        async def reminder_done():
            return await live_timer(db, f"rm15:{aid}") is None

        await eventually(reminder_done, what="the reminder fired and done")

        # She presses Join: both are rung in a chat the app opened for the two of them.
        ack = await press(patient, mine, reminder["id"], "visit.join", aid)
        assert ack["ok"], ack
        await eventually(
            lambda: "Calling… answer the ring to join the visit." in ephemerals(patient, mine),
            what="the answer to the press",
        )
        [ring] = await eventually(lambda: rings_of(doctor), what="the practitioner rung")
        call_id = ring["id"]
        own_chat = service_chats.app_chat_id(APP, [patient.user_id, doctor.user_id])
        assert (ring["conversation_id"], ring["media"]) == (own_chat, "video")
        assert ring["origin"]["app_id"] == APP
        await eventually(lambda: rings_of(patient, call_id), what="the patient rung")
        for someone in (doctor, patient):
            accepted = await someone.socket.call("call.accept", {"call_id": call_id})
            assert accepted["ok"], accepted
        peers = [CallPeer(patient, call_id), CallPeer(doctor, call_id)]
        await asyncio.gather(*(peer.connect() for peer in peers))
        await peers[0].wait_frames(doctor.user_id, "video", 10)
        await peers[1].wait_frames(patient.user_id, "video", 10)

        async def call_noted(event: str):
            appointment, _ = await stored(db, "appointments", aid)
            noted = appointment.get("call") or {}
            return noted.get("event") == event and noted

        noted = await eventually(lambda: call_noted("call.started"), what="call.started noted")
        assert noted["call_id"] == call_id

        # The visit has begun: the practitioner's note reaches her; the visit is done.
        await bring_visit_to(db, aid, now_ms() - MINUTE)
        text = "Rest, drink water, and book again in two weeks if it persists."
        note = await call(doctor, practice, "visit.note", {"appointment_id": aid, "text": text})
        assert note["sent"] is True
        [note_card] = await eventually(
            lambda: [m for m in cards(patient, mine) if m["card"]["title"] == "Visit note"],
            what="the visit note",
        )
        assert note_card["card"]["text"].startswith(f"Visit note:\n{text}")
        marked = await call(
            doctor, practice, "practice.mark", {"appointment_id": aid, "status": "fulfilled"}
        )
        assert marked["appointment"]["status"] == "fulfilled"
        for someone in (doctor, patient):  # the app's chat has no admin: the last out ends it
            left = await someone.socket.call("call.leave", {"call_id": call_id})
            assert left["ok"], left
        noted = await eventually(lambda: call_noted("call.ended"), what="call.ended noted")
        assert noted["outcome"] == "completed"
        done, _ = await stored(db, "appointments", aid)
        assert (done["status"], done["note"]["text"]) == ("fulfilled", text)
        assert [h["status"] for h in done["history"]] == ["pending", "booked", "fulfilled"]
    finally:
        await asyncio.gather(*(peer.close() for peer in peers))
        await close_all([admin, doctor, patient])
