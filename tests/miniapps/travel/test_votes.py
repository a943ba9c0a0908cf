"""Votes: made by command or web view, each with its own card whose buttons carry the tallies,
ballots from travellers only (a second press changes it; ten at once are ten ballots), and
closing applies the winner — dates, destination, an activity — unless it is a tie or no longer
valid."""

from __future__ import annotations

import asyncio

import pytest

from tests.miniapps.travel.travel_fixtures import (
    DAY,
    HOUR,
    T0,
    card_words,
    start_trip,
    trip_card,
)

DASH = "\u2013"  # an en dash, as cards write date ranges
DATES_VOTE = "/trip vote dates 2027-05-01..2027-05-05 | 2027-05-08..2027-05-12"


def span(start: str, end: str) -> dict:
    return {"start": start, "end": end}


def vote_card(group) -> dict:
    """The latest vote card in the chat (id and card)."""
    message = [m for m in group.sim.messages(group.chat) if m["type"] == "card"][-1]
    assert message["card"]["title"].startswith("Vote · "), message
    return message


def labels(shown: dict) -> list[str]:
    return [b["label"] for b in shown.get("buttons", [])]


async def press(group, user, message_id: str, option: int) -> None:
    """``user`` presses the ``option``-th option (1-based) of the vote card."""
    button = group.sim.card(message_id)["buttons"][option - 1]
    await group.press(user, message_id, "vote.cast", button["value"])


async def close(group, user, message_id: str) -> None:
    await group.press(user, message_id, "vote.close")


async def three(group):
    ana, ben, cleo = group.person("ana"), group.person("ben"), group.person("cleo")
    await start_trip(group, ana, ben, cleo)
    return ana, ben, cleo


# --- the four kinds ---------------------------------------------------------------------------


async def test_a_dates_vote_moves_the_trip(group):
    ana, ben, cleo = await three(group)
    await group.command(ben, DATES_VOTE)
    message = vote_card(group)
    (vote,) = group.trip()["votes"]
    assert vote == {
        "id": "v1",
        "kind": "dates",
        "question": "Which dates?",
        "options": [
            {"id": "o1", "label": f"1{DASH}5 May 2027", "value": span("2027-05-01", "2027-05-05")},
            {"id": "o2", "label": f"8{DASH}12 May 2027", "value": span("2027-05-08", "2027-05-12")},
        ],
        "ballots": {},
        "status": "open",
        "winner": None,
        "created_by": ben.id,
        "card_message_id": message["id"],
    }  # fmt: skip
    assert labels(message["card"]) == [
        f"1{DASH}5 May 2027 (0)",
        f"8{DASH}12 May 2027 (0)",
        "Close vote",
    ]
    assert "Vote v1: Which dates?" in card_words(trip_card(group))
    await press(group, ana, message["id"], 1)
    assert group.said(ana) == f"Your vote: 1{DASH}5 May 2027."
    await press(group, ben, message["id"], 2)
    await press(group, cleo, message["id"], 2)
    shown = group.sim.card(message["id"])
    assert labels(shown)[:2] == [f"1{DASH}5 May 2027 (1)", f"8{DASH}12 May 2027 (2)"]
    assert "3 of 3 voted" in shown["text"]
    assert f"1{DASH}5 May 2027 (1) · 8{DASH}12 May 2027 (2)" in card_words(trip_card(group))
    # The vote's creator closes it: the trip moves, its reminder with it.
    await close(group, ben, message["id"])
    trip = group.trip()
    assert (trip["start"], trip["end"]) == ("2027-05-08", "2027-05-12")
    assert trip["votes"][0]["status"] == "closed" and trip["votes"][0]["winner"] == "o2"
    assert group.sim.messages(group.chat)[-1]["text"] == (
        f"Vote closed — Which dates? 8{DASH}12 May 2027 (2 votes)."
    )
    closed = group.sim.card(message["id"])
    assert "buttons" not in closed and f"Closed: 8{DASH}12 May 2027 won." in closed["text"]
    assert "Vote v1" not in card_words(trip_card(group))
    assert f"8{DASH}12 May 2027" in trip_card(group)["title"]
    assert group.timer_keys()[f"rm-{trip['id']}-start-0"] == T0 + 67 * DAY + 8 * HOUR


async def test_a_destination_vote_changes_the_destination_and_currency(group):
    ana, ben, _ = await three(group)
    await group.command(ana, "/trip vote destination Lisbon | London")
    message = vote_card(group)
    assert labels(message["card"])[:2] == ["Lisbon (LIS) (0)", "London (LCY) (0)"]
    await press(group, ben, message["id"], 2)
    await close(group, ana, message["id"])
    trip = group.trip()
    assert trip["title"] == "London" and trip["currency"] == "GBP"
    assert trip["destination"]["airport"] == "LCY"
    assert trip["destination"]["zone"] == "Europe/London"
    assert trip_card(group)["title"].startswith("✈ London")


async def test_an_activity_vote_adds_the_winner_to_the_plan(group):
    ana, ben, cleo = await three(group)
    await group.command(
        cleo, '/trip vote activity "Sintra palace" 2027-05-03 09:00 | "Surf" 2027-05-03 10:00'
    )
    message = vote_card(group)
    assert message["card"]["title"] == "Vote · Which activity?"
    assert labels(message["card"])[:2] == [
        "Sintra palace · Mon 3 May 09:00 (0)",
        "Surf · Mon 3 May 10:00 (0)",
    ]
    await press(group, ana, message["id"], 1)
    await press(group, ben, message["id"], 1)
    await close(group, ana, message["id"])  # the trip's creator may close it too
    (item,) = group.trip()["items"]
    assert (item["title"], item["kind"], item["start"], item["zone"]) == (
        "Sintra palace",
        "activity",
        "2027-05-03T09:00",
        "Europe/Lisbon",
    )
    assert item["updated_by"] == cleo.id and item["status"] == "planned"
    assert item["id"] == "i2"  # v1 was the vote
    assert "Mon 3 May: 09:00 • Sintra palace" in card_words(trip_card(group))


async def test_any_question(group):
    ana, ben, _ = await three(group)
    await group.command(ben, "/trip vote Where do we eat tonight? Sushi | Pizza | Tapas")
    message = vote_card(group)
    assert message["card"]["title"] == "Vote · Where do we eat tonight?"
    await press(group, ana, message["id"], 3)
    await press(group, ben, message["id"], 3)
    before = {k: v for k, v in group.trip().items() if k != "votes"}
    await close(group, ben, message["id"])
    assert group.trip()["votes"][0]["winner"] == "o3"
    assert {k: v for k, v in group.trip().items() if k != "votes"} == before
    await group.command(ana, "/trip vote")
    assert group.said(ana).startswith("Usage")  # no open vote left: only the usage


async def test_votes_by_web_view(group):
    ana, ben, _ = await three(group)
    answer = await group.view(
        ana,
        "vote.create",
        {"kind": "dates", "options": [
            {"label": "early", "value": {"start": "2027-05-01", "end": "2027-05-03"}},
            {"label": "2027-05-02..2027-05-04"},
        ]},
    )  # fmt: skip
    (vote,) = answer["trip"]["votes"]
    assert [o["label"] for o in vote["options"]] == [f"1{DASH}3 May 2027", f"2{DASH}4 May 2027"]
    assert vote["card_message_id"] == vote_card(group)["id"]
    await group.view(ben, "vote.cast", {"vote_id": "v1", "option_id": "o2"})
    answer = await group.view(ana, "vote.close", {"vote_id": "v1"})
    assert (answer["trip"]["start"], answer["trip"]["end"]) == ("2027-05-02", "2027-05-04")
    assert group.sim.messages(group.chat)[-1]["text"].startswith("Vote closed")


# --- ballots ----------------------------------------------------------------------------------


async def test_a_second_press_changes_the_ballot_and_leavers_do_not_count(group):
    ana, ben, _ = await three(group)
    await group.command(ana, DATES_VOTE)
    message = vote_card(group)
    await press(group, ben, message["id"], 1)
    await press(group, ben, message["id"], 2)
    assert group.trip()["votes"][0]["ballots"] == {ben.id: "o2"}
    assert labels(group.sim.card(message["id"]))[:2] == [
        f"1{DASH}5 May 2027 (0)",
        f"8{DASH}12 May 2027 (1)",
    ]
    await group.command(ben, "/trip leave")
    assert "Nobody has voted yet" in await refused_close(group, ana)


async def refused_close(group, user, vote_id: str = "v1") -> str:
    before = group.snapshot()
    refused = await group.refused(user, "vote.close", {"vote_id": vote_id})
    assert group.snapshot() == before
    return f"{refused.code}: {refused.message}"


async def test_ten_travellers_vote_at_once(group):
    ana = group.person("ana")
    people = [group.person(f"p{n}") for n in range(10)]
    await start_trip(group, ana, *people)
    await group.command(ana, "/trip vote Lunch? Sushi | Pizza")
    message = vote_card(group)
    await asyncio.gather(*(press(group, p, message["id"], 1 + n % 2) for n, p in enumerate(people)))
    ballots = group.trip()["votes"][0]["ballots"]
    assert len(ballots) == 10 and set(ballots) == {p.id for p in people}
    assert labels(group.sim.card(message["id"]))[:2] == ["Sushi (5)", "Pizza (5)"]


async def test_ballot_refusals_write_nothing(group):
    ana, ben, cleo = await three(group)
    zed = group.person("zed")
    await group.command(ana, "/trip vote Lunch? Sushi | Pizza")
    message = vote_card(group)
    before = group.snapshot()
    await press(group, zed, message["id"], 1)
    assert "Only the trip's travellers" in group.said(zed)
    await group.press(ana, message["id"], "vote.cast", value="garbage")
    assert "not one of this app's" in group.said(ana)
    await group.press(ana, message["id"], "vote.cast", value=f"{group.trip()['id']}:v1:o9")
    assert "not one of this vote's options" in group.said(ana)
    await group.press(ana, message["id"], "vote.cast", value="tr0000000000:v1:o1")
    assert "not this chat's" in group.said(ana)
    for params, code in (
        ({"vote_id": "v9", "option_id": "o1"}, "unknown_vote"),
        ({"vote_id": "v1", "option_id": "o3"}, "bad_option"),
        ({"vote_id": "v1", "option_id": None}, "bad_option"),
    ):
        assert (await group.refused(ana, "vote.cast", params)).code == code
    assert (await group.refused(zed, "vote.cast", {"vote_id": "v1", "option_id": "o1"})).code == (
        "not_a_traveller"
    )
    assert group.snapshot() == before
    # Once closed, no more ballots.
    await press(group, ben, message["id"], 1)
    await close(group, ana, message["id"])
    before = group.snapshot()
    refused = await group.refused(cleo, "vote.cast", {"vote_id": "v1", "option_id": "o2"})
    assert refused.code == "vote_closed" and group.snapshot() == before
    assert (await refused_close(group, ana)).startswith("vote_closed")


# --- closing ----------------------------------------------------------------------------------


async def test_close_refusals(group):
    ana, ben, cleo = await three(group)
    await group.command(ana, "/trip vote Lunch? Sushi | Pizza")
    message = vote_card(group)
    assert await refused_close(group, ana) == "tie: Nobody has voted yet."
    await press(group, ben, message["id"], 1)
    await press(group, cleo, message["id"], 2)
    assert await refused_close(group, ana) == "tie: A tie between Sushi and Pizza: one more ballot?"
    assert (await refused_close(group, ben)).startswith("not_allowed")
    assert (await refused_close(group, ana, "v7")).startswith("unknown_vote")
    before = group.snapshot()
    await close(group, cleo, message["id"])
    assert "Only who made the vote" in group.said(cleo) and group.snapshot() == before
    await group.command(ana, "/trip vote close v1")
    assert "A tie between" in group.said(ana) and group.snapshot() == before


async def test_a_winner_no_longer_valid_keeps_the_vote_open(group):
    ana, ben, cleo = await three(group)
    await group.command(ana, "/trip vote dates 2027-03-03..2027-03-05 | 2027-05-08..2027-05-12")
    message = vote_card(group)
    await press(group, ben, message["id"], 1)
    await group.sim.advance(days=3)  # 4 March: the 3rd is past
    before = group.snapshot()
    await group.command(ana, "/trip vote close v1")
    assert group.said(ana).startswith(f"3{DASH}5 Mar 2027 won, but: ")
    assert "already past" in group.said(ana) and group.snapshot() == before
    assert group.trip()["votes"][0]["status"] == "open"
    # Another ballot elsewhere: the other option wins and applies.
    await press(group, cleo, message["id"], 2)
    await press(group, ben, message["id"], 2)
    await group.command(ana, "/trip vote close v1")
    assert group.trip()["start"] == "2027-05-08"


async def test_an_activity_outside_new_dates_cannot_win(group):
    ana, ben, _ = await three(group)
    await group.command(ana, '/trip vote activity "Surf" 2027-05-04 10:00 | "Zoo" 2027-05-02')
    message = vote_card(group)
    await press(group, ben, message["id"], 1)
    await group.command(ana, "/trip dates 2027-05-01 2027-05-02")
    assert "outside_trip" in await refused_close(group, ana)


# --- bad votes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/trip vote dates 2027-05-01..2027-05-05", "Give 2 to 8 options"),
        ("/trip vote Q? " + " | ".join(f"o{n}" for n in range(9)), "Give 2 to 8 options"),
        ("/trip vote Lunch? Sushi | sushi", "Two options are the same"),
        ("/trip vote dates 2027-02-01..2027-02-05 | 2027-05-08..2027-05-12", "already past"),
        ("/trip vote dates May | June", "Give dates as"),
        ("/trip vote dates 2027-05-08..2027-05-01 | 2027-05-08..2027-05-12", "before it starts"),
        ("/trip vote dates 2027-05-01..2027-08-01 | 2027-05-08..2027-05-12", "at most 60 days"),
        ('/trip vote activity "Surf" 2027-06-01 10:00 | "Zoo" 2027-05-02', "within the trip's"),
        ('/trip vote activity "Surf" | "Zoo" 2027-05-02', "Give an activity as"),
        ('/trip vote activity "Surf" 2027-05-02 25:00 | "Zoo" 2027-05-02', "not a time"),
        ("/trip vote Lunch? " + "x" * 61 + " | Pizza", "at most 60 characters"),
    ],
)
async def test_bad_votes_write_nothing(group, text, says):
    ana = group.person("ana")
    await start_trip(group, ana)
    before, posted = group.snapshot(), len(group.sim.messages(group.chat))
    await group.command(ana, text)
    assert says in group.said(ana)
    assert group.snapshot() == before and len(group.sim.messages(group.chat)) == posted


AB = [{"label": "a"}, {"label": "b"}]
SURF = {"title": "Surf", "date": "2027-05-02"}
BAD_VOTE_VIEWS = [
    ({"kind": "weather", "options": AB}, "bad_vote"),
    ({"kind": "other", "options": AB}, "bad_vote"),
    ({"kind": "other", "question": "Q?", "options": "a|b"}, "bad_vote"),
    ({"kind": "other", "question": "Q?", "options": ["a", "b"]}, "bad_vote"),
    ({"kind": "other", "question": "Q?", "options": [{"label": ""}, {"label": "b"}]}, "bad_vote"),
    ({"kind": "other", "question": "Q" * 201, "options": AB}, "bad_vote"),
    (
        {"kind": "dates", "options": [{"label": "x", "value": {"start": "2027-05-01"}}, *AB]},
        "bad_date",
    ),
    (
        {"kind": "activity", "options": [{"value": SURF}, {"value": {**SURF, "title": ""}}]},
        "bad_item",
    ),
]


@pytest.mark.parametrize(("params", "code"), BAD_VOTE_VIEWS)
async def test_bad_vote_create_views(group, params, code):
    ana = group.person("ana")
    await start_trip(group, ana)
    before = group.snapshot()
    refused = await group.refused(ana, "vote.create", params)
    assert refused.code == code and group.snapshot() == before


async def test_only_travellers_make_votes(group):
    ana, zed = group.person("ana"), group.person("zed")
    await start_trip(group, ana)
    before = group.snapshot()
    await group.command(zed, "/trip vote Lunch? Sushi | Pizza")
    assert "Only the trip's travellers" in group.said(zed) and group.snapshot() == before
    assert group.sim.messages(group.chat)[-1]["card"]["title"].startswith("✈ Lisbon")
