"""The travel app's web view in real Chromium against a real gateway running the app: Ana opens
Travel from ``/trip`` in her group with Ben and starts a trip to Lisbon from the page (allowing
the app to see her name for the traveller list); Ben opens it from the trip card the group got
and joins. Ana asks where to go (Lisbon or Porto); both vote Porto from their pages and Ana
closes the vote: Porto wins and becomes the destination. Ana adds a 20.00 USD dinner she paid,
split equally; Ben's Money tab says he owes her $10.00, he presses Settle, the wallet's transfer
sheet opens in his chat client, he confirms, and the balances show everyone settled (his wallet
is 10.00 USD lighter). The itinerary's calendar file downloads from the sandboxed page. The
second test plans, edits in step with another device (a version conflict) and books a flight
with a held share. Every wait is on the page's state, never a sleep."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.helpers import ApiClient
from tests.web.app_helpers import call_app_view
from tests.web.test_chat_browser import TIMEOUT, befriend, chat_item, new_page, send, sign_in

pytestmark = pytest.mark.timeout(240)

APP_ID = "travel"
GROUP = "Lisbon crew"


async def allow_consent(page) -> None:
    """The host's consent sheet (the app asks to see the person's name): allow it."""
    from playwright.async_api import expect

    consent = page.get_by_test_id("consent-sheet")
    await expect(consent).to_contain_text("Travel wants to see your display name")
    await consent.get_by_test_id("consent-allow").click()
    await expect(consent).to_have_count(0)


async def open_group(page, username: str) -> None:
    from playwright.async_api import expect

    await sign_in(page, username)
    await chat_item(page, GROUP).click()
    await expect(page.get_by_test_id("chat-title")).to_have_text(GROUP)


async def test_two_friends_start_a_trip_vote_split_a_dinner_and_settle(web_gateway, browser):
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, _app = web_gateway
    rest = ApiClient(base)
    try:
        ana, ben = await befriend(rest, "ana", "ben")
        for person in (ana, ben):
            status, body = await rest.patch(
                "/api/v1/me", json={"locale": "en-US"}, token=person["access_token"]
            )
            assert status == 200, body
        status, body = await rest.post(
            "/api/v1/conversations",
            json={"type": "group", "title": GROUP, "member_ids": [ben["user"]["id"]]},
            token=ana["access_token"],
        )
        assert status == 201, body
        cid = body["conversation"]["id"]
        status, body = await rest.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": APP_ID}, token=ana["access_token"]
        )
        assert status in (200, 201), body
        # Ben's wallet has money to settle up with.
        status, body = await rest.post(
            "/api/v1/wallet/dev-topup",
            json={"amount": 10000, "currency": "USD"},
            token=ben["access_token"],
        )
        assert status in (200, 201), body
        start = dt.date.today() + dt.timedelta(days=60)
        end = start + dt.timedelta(days=4)

        # Ana: /trip in the group → the app's welcome card → Open Travel: no trip yet, she
        # starts one from the page.
        ana_page = await new_page(browser, base)
        await open_group(ana_page, "ana")
        await send(ana_page, "/trip")
        welcome = ana_page.get_by_test_id("card").filter(has_text="Plan a trip with this group")
        opener = welcome.last.locator("[data-testid=card-button][data-opens=webview]")
        await expect(opener).to_have_text("Open Travel")
        await opener.click()
        ana_view = ana_page.frame_locator("[data-testid=webview-frame]")
        create = ana_view.locator("#create-trip")
        await create.get_by_label("Destination").fill("Lisbon")
        await create.get_by_label("Start date").fill(start.isoformat())
        await create.get_by_label("End date").fill(end.isoformat())
        await create.get_by_role("button", name="Create trip").click()
        await allow_consent(ana_page)
        await expect(ana_view.locator("#trip-title")).to_have_text("Lisbon")
        await expect(ana_view.locator("#trip-zone")).to_have_text("Europe/Lisbon")
        await expect(ana_view.get_by_role("list", name="Travellers")).to_have_text("ana (you)")

        # Ben: the trip card came to the group; Open trip → Join.
        ben_page = await new_page(browser, base)
        await open_group(ben_page, "ben")
        trip_card = ben_page.get_by_test_id("card").filter(has_text="Lisbon").last
        await (
            trip_card.locator("[data-testid=card-button][data-opens=webview]")
            .filter(has_text="Open trip")
            .click()
        )
        ben_view = ben_page.frame_locator("[data-testid=webview-frame]")
        await expect(ben_view.locator("#trip-title")).to_have_text("Lisbon")
        await ben_view.get_by_role("button", name="Join").click()
        await allow_consent(ben_page)
        travellers = ben_view.get_by_role("list", name="Travellers")
        await expect(travellers.get_by_role("listitem")).to_have_count(2)
        await expect(travellers).to_contain_text("ben (you)")
        await expect(ben_view.get_by_role("button", name="Leave the trip")).to_be_visible()

        # Ana asks where to go; she and Ben both vote Porto; she closes the vote.
        await ana_view.locator("#tab-votes").click()
        ask = ana_view.locator("#create-vote")
        await ask.get_by_label("Kind").select_option("destination")
        await ask.get_by_label("Question").fill("Where do we go?")
        await ask.get_by_label("Option 1").fill("Lisbon")
        await ask.get_by_label("Option 2").fill("Porto")
        await ask.get_by_role("button", name="Create vote").click()
        vote = ana_view.locator(".vote.open").filter(has_text="Where do we go?")
        await vote.get_by_role("button", name="Vote for Porto").click()
        porto = vote.locator(".option").filter(has_text="Porto")
        await expect(porto.locator(".tally")).to_have_text("1 vote")
        await expect(porto.locator(".mine")).to_have_text("your vote")

        await ben_view.locator("#tab-votes").click()
        ben_vote = ben_view.locator(".vote.open").filter(has_text="Where do we go?")
        await ben_vote.get_by_role("button", name="Vote for Porto").click()
        await expect(ben_vote.locator(".option").filter(has_text="Porto")).to_contain_text(
            "2 votes"
        )

        await ana_view.locator("#tab-votes").click()  # shows the latest tallies
        await expect(porto.locator(".tally")).to_have_text("2 votes")
        await vote.get_by_role("button", name="Close vote: Where do we go?").click()
        decided = ana_view.locator(".vote.closed").filter(has_text="Where do we go?")
        await expect(decided.locator(".winner-line")).to_have_text("Winner: Porto (OPO)")
        await expect(ana_view.locator(".vote.open")).to_have_count(0)
        # The winner is the trip's destination now (its airport, its zone).
        await ana_view.locator("#tab-trip").click()
        await expect(ana_view.locator("#trip-destination")).to_contain_text("(OPO)")
        await expect(ana_view.locator("#trip-zone")).to_have_text("Europe/Lisbon")

        # Ana paid a 20.00 USD dinner for both: split equally, Ben owes her 10.00.
        await ana_view.locator("#tab-money").click()
        await expect(ana_view.locator("#balances")).to_have_text("All settled up.")
        spend = ana_view.locator("#add-expense")
        await spend.get_by_label("Title").fill("Dinner")
        await spend.get_by_label("Amount", exact=True).fill("20.00")
        await spend.get_by_label("Currency").fill("USD")
        await expect(spend.get_by_label("Paid by").locator("option:checked")).to_have_text("ana")
        await spend.get_by_label("Split").select_option("equal")
        await expect(spend.get_by_role("checkbox", name="ana")).to_be_checked()
        await expect(spend.get_by_role("checkbox", name="ben")).to_be_checked()
        await spend.get_by_role("button", name="Add expense").click()
        await expect(ana_view.locator(".expense").filter(has_text="Dinner")).to_contain_text(
            "$20.00"
        )
        await expect(ana_view.locator("#balances")).to_contain_text("ben owes you $10.00")

        # Ben settles from his Money tab: the wallet's transfer sheet, in his chat client.
        await ben_view.locator("#tab-money").click()
        owe = ben_view.locator("#balances .owe")
        await expect(owe).to_contain_text("You owe ana $10.00")
        await owe.get_by_role("button", name="Settle $10.00 with ana").click()
        sheet = ben_page.get_by_test_id("payment-sheet")
        await expect(sheet).to_be_visible()
        await expect(sheet.get_by_role("heading")).to_have_text("Send money (asked by Travel)")
        await expect(sheet.get_by_test_id("payment-amount")).to_have_text("10.00 USD")
        await sheet.get_by_test_id("payment-confirm").click()
        await expect(sheet).to_be_hidden()
        await expect(ben_view.locator("#status")).to_have_text("Settled.")
        await expect(ben_view.locator("#balances")).to_have_text("All settled up.")
        await expect(ben_page.get_by_test_id("wallet-balance")).to_have_text("90.00 USD")
        await ana_view.locator("#tab-money").click()
        await expect(ana_view.locator("#balances")).to_have_text("All settled up.")

        # The itinerary as a calendar file, saved from the sandboxed page (a Blob link).
        async with ana_page.expect_download() as downloading:
            await ana_view.get_by_role("button", name="Download .ics").click()
        download = await downloading.value
        assert download.suggested_filename.endswith(".ics")
        calendar = (await download.path()).read_text()
        assert calendar.startswith("BEGIN:VCALENDAR")
        assert ana_page.errors == [] and ben_page.errors == []
    finally:
        await rest.close()


async def test_a_traveller_plans_edits_in_step_and_books_a_flight(web_gateway, browser):
    """Ana starts a trip with ``/trip new … from MAD`` and opens its plan from the card's Plan
    button (the page opens on #plan); she adds an activity at its local time; an edit made
    meanwhile from another device wins over her stale one (the page shows the server's conflict
    and the fresh item, nothing lost); she searches flights (the labelled sample provider) and
    books one for the group — her share is held in the wallet's sheet, the flight is booked and
    joins the plan, unchangeable by hand, and becomes an expense."""
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)
    base, _app = web_gateway
    rest = ApiClient(base)
    try:
        ana, ben = await befriend(rest, "ana", "ben")
        token = ana["access_token"]
        status, body = await rest.patch("/api/v1/me", json={"locale": "en-US"}, token=token)
        assert status == 200, body
        status, body = await rest.post(
            "/api/v1/conversations",
            json={"type": "group", "title": GROUP, "member_ids": [ben["user"]["id"]]},
            token=token,
        )
        assert status == 201, body
        cid = body["conversation"]["id"]
        status, body = await rest.post(
            f"/api/v1/conversations/{cid}/apps", json={"app_id": APP_ID}, token=token
        )
        assert status in (200, 201), body
        status, body = await rest.post(
            "/api/v1/wallet/dev-topup", json={"amount": 200000, "currency": "EUR"}, token=token
        )
        assert status in (200, 201), body
        start = dt.date.today() + dt.timedelta(days=60)
        end = start + dt.timedelta(days=4)
        second = (start + dt.timedelta(days=1)).isoformat()

        page = await new_page(browser, base)
        await open_group(page, "ana")
        await send(page, f'/trip new "Lisbon" {start} {end} from MAD')
        await allow_consent(page)
        trip_card = page.get_by_test_id("card").filter(has_text="✈ Lisbon").last
        await (
            trip_card.locator("[data-testid=card-button][data-opens=webview]")
            .filter(has_text="Plan")
            .click()
        )
        view = page.frame_locator("[data-testid=webview-frame]")
        plan = view.locator("#plan")
        await expect(plan.locator("h2").first).to_have_text("Lisbon: the plan")
        await expect(plan).to_contain_text("Times are local: Europe/Lisbon")

        # An activity on the second day, at 10:00 Lisbon time.
        add = view.locator("#add-item")
        await add.get_by_label("Title").fill("Tram 28")
        await add.get_by_label("Date", exact=True).fill(second)
        await add.get_by_label("Time", exact=True).fill("10:00")
        await add.get_by_label("Place").fill("Graça")
        await add.get_by_role("button", name="Add to plan").click()
        day = plan.locator(f".day[data-date='{second}']")
        tram = day.locator(".item").filter(has_text="Tram 28")
        await expect(tram.locator(".time")).to_have_text("10:00 AM")
        await expect(tram).to_contain_text("Graça")

        # Meanwhile, from another device, the item is renamed (version 1 → 2).
        answer = await call_app_view(rest, APP_ID, token, cid, "trip.get")
        [item] = answer["trip"]["items"]
        assert item["version"] == 1
        await call_app_view(
            rest,
            APP_ID,
            token,
            cid,
            "item.edit",
            {"item_id": item["id"], "version": 1, "title": "Tram 28E"},
        )
        # Her edit of the copy she sees (version 1) is refused; the fresh item shows, with why.
        await tram.get_by_role("button", name="Edit Tram 28").click()
        edit = plan.locator("form.edit")
        await edit.get_by_label("Time", exact=True).fill("11:00")
        await edit.get_by_role("button", name="Save").click()
        tram = day.locator(".item").filter(has_text="Tram 28E")
        await expect(tram.get_by_role("alert")).to_contain_text("changed this item meanwhile")
        await expect(tram.get_by_role("alert")).to_contain_text("Nothing was saved")
        await expect(tram.locator(".time")).to_have_text("10:00 AM")
        # Redone on the fresh copy, it lands.
        await tram.get_by_role("button", name="Edit Tram 28E").click()
        await edit.get_by_label("Time", exact=True).fill("11:00")
        await edit.get_by_role("button", name="Save").click()
        await expect(tram.locator(".time")).to_have_text("11:00 AM")
        await expect(tram.get_by_role("alert")).to_have_count(0)

        # Flights: from her home airport to Lisbon on the first day, sample offers, labelled.
        await view.locator("#tab-search").click()
        search = view.locator("#flight-search")
        await expect(search.get_by_label("From")).to_have_value("MAD")
        await expect(search.get_by_label("To")).to_have_value("LIS")
        await expect(search.get_by_label("Date")).to_have_value(start.isoformat())
        await search.get_by_role("button", name="Search flights").click()
        offers = view.locator("#offers .offer")
        await expect(offers.first).to_be_visible()
        await expect(view.locator("#offers > .sample")).to_contain_text("Sample")
        first = offers.first
        await expect(first.locator(".legs li").first).to_contain_text("(Europe/Madrid)")
        title = await first.locator("h3").inner_text()
        await first.get_by_role("button", name=f"Book together: {title}").click()
        booking = view.locator("#booking .booking")
        await expect(booking).to_contain_text("0 of 1 held")

        # Her share, held on the wallet's sheet (an authorisation): the flight is booked.
        await booking.get_by_role("button", name="Hold my share").click()
        sheet = page.get_by_test_id("payment-sheet")
        await expect(sheet).to_be_visible()
        await expect(sheet.get_by_role("heading")).to_have_text("Pay Travel")
        await sheet.get_by_test_id("payment-confirm").click()
        await expect(sheet).to_be_hidden()
        await expect(view.locator("#status")).to_have_text("Booked: everyone's share is paid.")
        await expect(booking).to_contain_text("booked")
        await expect(booking).to_contain_text("Booking reference")
        await expect(booking.get_by_role("button")).to_have_count(0)

        # The flight joined the plan (booked: it changes with the booking, not by hand) and
        # the booking is an expense.
        await view.locator("#tab-plan").click()
        flight = plan.locator(".item.flight").first
        await expect(flight).to_contain_text("MAD")
        await expect(flight).to_contain_text("booked")
        await expect(flight.get_by_role("button")).to_have_count(0)
        await view.locator("#tab-money").click()
        await expect(view.locator(".expense.booking")).to_have_count(1)

        # The calendar file has the booked flight and the tram, at their local times.
        async with page.expect_download() as downloading:
            await view.get_by_role("button", name="Download .ics").click()
        download = await downloading.value
        calendar = (await download.path()).read_text()
        assert "SUMMARY:Tram 28E" in calendar
        assert "MAD → LIS" in calendar
        assert f"DTSTART;TZID=Europe/Lisbon:{second.replace('-', '')}T110000" in calendar
        await expect(
            view.get_by_role("link", name=f"Download {download.suggested_filename}")
        ).to_be_visible()
        assert page.errors == []
    finally:
        await rest.close()
