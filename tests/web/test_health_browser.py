"""The health app's web view in real Chromium against a real gateway running the app: a doctor
(the ``practitioner`` role, given by an admin) keeps surgery hours in Shanghai (saved over REST
through the app's own ``practice.save``); the patient, in New York, in a chat with the app,
opens Health from ``/health``'s card, picks the doctor, sees the free times in her own zone,
holds one (allowing the app's service messages on the host's sheet), confirms it (a free visit)
and finds it under "Appointments"; the calendar file downloads from the sandboxed page (a Blob
link) and says the same instant; in "Records" she adds her weight and sees it in the list and on
the chart, and saves her records as a FHIR R4 Bundle (a Blob link too; she lets the app see her
name for it), with the weight and the visit in it. Every wait is on the page's state, never a
sleep."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_skeleton, format_time

from tests.helpers import ApiClient
from tests.web.app_helpers import call_app_view, role_group
from tests.web.test_chat_browser import TIMEOUT, chat_item, new_page, send, sign_in

pytestmark = pytest.mark.timeout(180)

APP_ID = "health"
DOCTOR_ZONE = "Asia/Shanghai"
PATIENT_ZONE = "America/New_York"
HOURS = [(9, 0), (9, 30)]  # the doctor's 30-minute visits, every day 09:00-10:00 in Shanghai


async def call_view(rest: ApiClient, token: str, cid: str, name: str, params: dict | None = None):
    """One of the health app's views, as its page calls it."""
    return await call_app_view(rest, APP_ID, token, cid, name, params)


def first_free_slot(after: datetime) -> datetime:
    """The doctor's first visit starting after ``after``, as an aware datetime."""
    zone = ZoneInfo(DOCTOR_ZONE)
    day = after.astimezone(zone).date() - timedelta(days=1)
    while True:
        for hour, minute in HOURS:
            start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
            if start > after:
                return start
        day += timedelta(days=1)


async def test_a_patient_books_a_visit_and_records_her_weight(web_gateway, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, app = web_gateway
    rest = ApiClient(base)
    try:
        nora, ines, cid = await role_group(
            rest, app, APP_ID, "practitioner", "nora", "ines", "Family doctor"
        )
        ines_token, nora_token = ines["access_token"], nora["access_token"]
        weekly = [{"weekday": d, "start": "09:00", "end": "10:00"} for d in range(7)]
        saved = await call_view(
            rest,
            ines_token,
            cid,
            "practice.save",
            {
                "name": "Dr. Ines Lau",
                "specialties": ["general practice"],
                "languages": ["en", "zh"],
                "fee": {"amount": 0, "currency": "USD"},
                "zone": DOCTOR_ZONE,
                "visit_minutes": 30,
                "visit_type": "video",
                "weekly": weekly,
            },
        )
        assert saved["profile"]["zone"] == DOCTOR_ZONE
        status, body = await rest.patch(
            "/api/v1/me",
            json={"time_zone": PATIENT_ZONE, "locale": "en-US"},
            token=nora_token,
        )
        assert status == 200, body

        page = await new_page(browser, base)
        await sign_in(page, "nora")
        await chat_item(page, "Family doctor").click()
        await expect(page.get_by_test_id("chat-title")).to_have_text("Family doctor")
        await send(page, "/health")
        welcome = page.get_by_test_id("card").filter(has_text="Not medical advice.").last
        opener = welcome.locator("[data-testid=card-button][data-opens=webview]")
        await expect(opener).to_have_text("Open Health")
        await opener.click()
        await expect(page.get_by_test_id("webview")).to_be_visible()
        frame = page.frame_locator("[data-testid=webview-frame]")

        # Doctors: hers, with its times in the patient's zone; Book opens its slots.
        doctors = frame.locator("#doctors")
        await expect(doctors).to_contain_text(f"Times in your zone: {PATIENT_ZONE}")
        tile = doctors.locator(".card").filter(has_text="Dr. Ines Lau")
        await expect(tile).to_contain_text("Free")
        await expect(frame.locator("#tab-practice")).to_be_hidden()  # not a practitioner
        await tile.get_by_role("button", name="Book").click()
        await expect(doctors.locator("h2")).to_have_text("Dr. Ines Lau")
        await expect(doctors).to_contain_text(f"The practitioner works in {DOCTOR_ZONE}")

        # The first time at least two minutes away, shown as New York reads it.
        start = first_free_slot(datetime.now(UTC) + timedelta(minutes=2))
        local = start.astimezone(ZoneInfo(PATIENT_ZONE))
        label = format_time(local, "short", locale="en_US")
        day = doctors.locator(".day").filter(
            has=frame.locator("h4", has_text=local.date().isoformat())
        )
        slot = day.locator("button.slot", has_text=label)
        await expect(slot).to_have_attribute("title", slot_title(local, label))
        await slot.click()

        # Held: the host asks whether Health may send her service messages; she allows.
        hold = frame.locator("#hold")
        await expect(hold).to_contain_text("Held for you")
        consent = page.get_by_test_id("consent-sheet")
        await expect(consent).to_be_visible()
        await consent.get_by_test_id("consent-allow").click()
        await expect(consent).to_have_count(0)
        await hold.get_by_role("button", name="Confirm", exact=True).click()
        await expect(frame.locator("#status")).to_have_text("Booked. You will get a reminder.")

        # Appointments: the visit, booked, at her time.
        upcoming = frame.locator("#appointments .card.appointment.booked")
        await expect(upcoming).to_have_count(1)
        await expect(upcoming.locator("h3")).to_have_text("Booked")
        await expect(upcoming).to_contain_text(label)
        await expect(upcoming).to_contain_text("Dr. Ines Lau · video visit · 30 min · Free")
        # The appointment card came to her service chat with Health, too.
        service = page.locator("[data-testid=conversation-item][data-type=service]")
        await expect(service.filter(has_text="Health")).to_contain_text("Appointment · Booked")

        # The calendar file, saved from the sandboxed page.
        await frame.get_by_role("button", name="Calendar file (.ics)").click()
        link = frame.get_by_role("link", name="Download appointments.ics")
        async with page.expect_download() as downloading:
            await link.click()
        download = await downloading.value
        assert download.suggested_filename == "appointments.ics"
        calendar = (await download.path()).read_text()
        assert calendar.startswith("BEGIN:VCALENDAR")
        assert f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%S}Z" in calendar
        assert "STATUS:CONFIRMED" in calendar
        text = frame.locator("#appointments textarea")
        await expect(text).to_have_value(calendar.replace("\r\n", "\n"))

        # Records: her weight, in the latest readings and on the chart.
        await frame.locator("#tab-records").click()
        vitals = frame.locator("#vitals-part")
        await expect(vitals.locator(".latest")).to_contain_text("Weight: —")
        form = vitals.locator(".form")
        await form.get_by_label("Value").fill("70.5")
        await form.get_by_label("Unit").fill("kg")
        await form.get_by_role("button", name="Add").click()
        await expect(frame.locator("#status")).to_have_text("Recorded 70.5 kg.")
        vitals = frame.locator("#vitals-part")
        await expect(vitals.locator(".latest")).to_contain_text("Weight: 70.5 kg")
        point = vitals.locator("svg.chart circle")
        await expect(point).to_have_count(1)
        await expect(point.locator("title")).to_contain_text("70.5 kg · ")
        await expect(frame.locator("#records")).to_contain_text("Not medical advice.")

        # Her records as a FHIR R4 Bundle, saved from the page: the weight is in it (LOINC).
        # Her name on it is her profile's: the host asks whether Health may see it; she allows.
        await frame.get_by_role("button", name="Export my records (FHIR R4)").click()
        consent = page.get_by_test_id("consent-sheet")
        await expect(consent).to_contain_text("see your display name")
        await consent.get_by_test_id("consent-allow").click()
        await expect(consent).to_have_count(0)
        link = frame.locator("#export-part a[download]")
        await expect(link).to_have_text(re.compile(r"^Download health-records-.+\.fhir\.json$"))
        async with page.expect_download() as downloading:
            await link.click()
        download = await downloading.value
        bundle = json.loads((await download.path()).read_text())
        assert download.suggested_filename == await link.get_attribute("download")
        assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
        [patient] = [
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
        ]
        assert patient["name"] == [{"text": "nora"}]
        [weight] = [
            entry["resource"]
            for entry in bundle["entry"]
            if entry["resource"]["resourceType"] == "Observation"
        ]
        assert weight["code"]["coding"][0]["code"] == "29463-7"
        assert (weight["valueQuantity"]["value"], weight["valueQuantity"]["code"]) == (70.5, "kg")
        appointments = [
            e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Appointment"
        ]
        assert [a["status"] for a in appointments] == ["booked"]
        assert page.errors == []
    finally:
        await rest.close()


def slot_title(local: datetime, label: str) -> str:
    """The slot button's title: the app's ``when_text`` (date, time, zone) for en-US."""
    day = format_skeleton("yMMMEd", local, tzinfo=local.tzinfo, locale="en_US", fuzzy=True)
    return f"{day} · {label} ({PATIENT_ZONE})"
