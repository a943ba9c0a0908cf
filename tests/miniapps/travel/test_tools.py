"""The travel app's read-only tool for other apps (the assistant): ``flight_offers``."""

from __future__ import annotations

from tests.miniapps.travel.travel_fixtures import Group


async def test_flight_offers_lists_sample_offers_and_writes_nothing(group: Group) -> None:
    ana = group.person("ana")
    before = group.snapshot()
    answer = await group.sim.invoke_tool(
        ana,
        group.chat,
        "flight_offers",
        {"origin": "MAD", "destination": "LIS", "date": "2027-05-01"},
    )
    offers = answer["result"]["offers"]
    assert offers and all(o["currency"] == "EUR" for o in offers)
    assert [float(o["price"]) for o in offers] == sorted(float(o["price"]) for o in offers)
    assert offers[0]["departs"].endswith("(Europe/Madrid)")
    assert answer["result"]["label"].startswith("Sample")
    card = group.sim.card(answer["message_id"])  # posted as the travel app's card
    assert card["title"] == "Flights MAD → LIS · 2027-05-01"
    assert [b.get("opens") for b in card["buttons"]] == ["webview"]  # no Book from a tool
    assert group.snapshot() == before  # nothing stored: a tool only reads


async def test_flight_offers_refuses_unknown_airports_and_past_dates(group: Group) -> None:
    ana = group.person("ana")
    answer = await group.sim.invoke_tool(
        ana,
        group.chat,
        "flight_offers",
        {"origin": "QQQ", "destination": "LIS", "date": "2027-05-01"},
    )
    assert answer["result"]["error"] == "unknown_airport" and answer["message_id"] is None
    answer = await group.sim.invoke_tool(
        ana,
        group.chat,
        "flight_offers",
        {"origin": "MAD", "destination": "LIS", "date": "2020-05-01"},
    )
    assert answer["result"]["error"] == "dates_in_past"
