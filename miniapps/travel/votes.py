"""Votes the group settles from the chat: dates, destination, an activity, or any question.

- ``/trip vote dates 2027-05-01..2027-05-05 | 2027-05-08..2027-05-12``
- ``/trip vote destination Lisbon | Porto``
- ``/trip vote activity "Sintra" 2027-05-03 09:00 | "Surf" 2027-05-03 10:00``
- ``/trip vote "Question?" A | B``; ``/trip vote close v3``; ``/trip vote`` lists the open ones.

(view ``vote.create`` ``{kind, question?, options: [{label, value?}]}``). Travellers create,
2 to 8 options, each checked when the vote is made (dates as for ``/trip new``, activities within
the trip's dates). Each vote posts its own **vote card**: one button per option with its tally
(``vote.cast``, value ``<trip_id>:<vote_id>:<option_id>``; travellers only, a second press
changes the ballot) and *Close vote* (``vote.close``): the vote's creator or the trip's creator
closes it and the winner is applied — dates become the trip's dates (checked again: a winner
that is no longer valid keeps the vote open and says why), a destination the trip's destination
(and its currency, while nothing was spent or is being booked), an activity a new plan item. A
tie (or no ballot) is refused (``tie``); a closed vote takes no ballot (``vote_closed``). The
open votes and their tallies also show on the trip card. Ballots are counted for the current
travellers only.
"""

from __future__ import annotations

from typing import Any

import card
import itinerary
import store
import trips
from store import TravelError, answers, viewing

from sdk import Button, Card, Field, Reply

KINDS = ("dates", "destination", "activity", "other")
OPTIONS_MIN, OPTIONS_MAX = 2, 8  # 8 options + Close vote: within a card's 10 buttons
OPEN_MAX = 10  # open votes of one trip
QUESTION_MAX = 200
LABEL_MAX = 60
QUESTIONS = {"dates": "Which dates?", "destination": "Where to?", "activity": "Which activity?"}
USAGE = (
    "Usage: /trip vote dates 2027-05-01..2027-05-05 | 2027-05-08..2027-05-12 · "
    "/trip vote destination Lisbon | Porto · "
    '/trip vote activity "Sintra" 2027-05-03 09:00 | "Surf" 2027-05-03 10:00 · '
    '/trip vote "Question?" A | B · /trip vote close v3'
)


# --- options ----------------------------------------------------------------------------------


def _label(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise TravelError("bad_vote", "Every option needs a label.")
    text = " ".join(text.split())
    if len(text) > LABEL_MAX:
        raise TravelError("bad_vote", f"An option is at most {LABEL_MAX} characters: {text[:20]}…")
    return text


def _dates_option(ctx, trip: dict[str, Any], label: Any, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        start, end = value.get("start"), value.get("end")
    else:
        words = str(label or "").replace("..", " ").split()
        if len(words) != 2:
            raise TravelError("bad_date", "Give dates as 2027-05-01..2027-05-05.")
        start, end = words
    first, last = trips.check_dates(start, end, trip["destination"]["zone"])
    return {"label": card.range_label(first, last), "value": {"start": first, "end": last}}


def _destination_option(ctx, trip: dict[str, Any], label: Any, value: Any) -> dict[str, Any]:
    name = _label((value or {}).get("name") if isinstance(value, dict) else label)
    destination, _ = trips.resolve(name, ctx.locale, ctx.time_zone)
    if destination is None:
        destination = {
            "name": name,
            "airport": None,
            "zone": trip["destination"]["zone"],
            "country": None,
            "lat": None,
            "lon": None,
        }
    text = name if not destination["airport"] else f"{name} ({destination['airport']})"
    return {"label": text[:LABEL_MAX], "value": {"title": name, "destination": destination}}


def _activity_option(ctx, trip: dict[str, Any], label: Any, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        words = str(label or "").split()
        at = next((i for i, w in enumerate(words) if trips._DATEISH.match(w)), None)
        if not at:
            raise TravelError("bad_vote", 'Give an activity as "Sintra" 2027-05-03 09:00.')
        value = {"title": " ".join(words[:at]), "date": words[at]}
        if len(words) > at + 1:
            value["time"] = words[at + 1]
        if len(words) > at + 2:
            raise TravelError("bad_vote", 'Give an activity as "Sintra" 2027-05-03 09:00.')
    spec = {k: value.get(k) for k in ("title", "date", "time", "place")}
    item = itinerary.build(trip, {**spec, "kind": "activity"})
    when = card.day_label(item["start"]) + (
        f" {itinerary.local_time(item['start'])}" if len(item["start"]) > 10 else ""
    )
    return {"label": card.clip(f"{item['title']} · {when}", LABEL_MAX), "value": {"item": item}}


def _other_option(ctx, trip: dict[str, Any], label: Any, value: Any) -> dict[str, Any]:
    return {"label": _label(label), "value": None}


_OPTIONS = {
    "dates": _dates_option,
    "destination": _destination_option,
    "activity": _activity_option,
    "other": _other_option,
}


def build(ctx, trip: dict[str, Any], kind: Any, question: Any, options: Any) -> dict[str, Any]:
    """A vote (without id) from ``kind``, ``question`` and ``[{label, value?}]``, checked."""
    if kind not in KINDS:
        raise TravelError("bad_vote", f"A vote is about {', '.join(KINDS)}.")
    if question in (None, "") and kind in QUESTIONS:
        question = QUESTIONS[kind]
    if not isinstance(question, str) or not question.strip():
        raise TravelError("bad_vote", "Ask a question: " + USAGE)
    question = " ".join(question.split())
    if len(question) > QUESTION_MAX:
        raise TravelError("bad_vote", f"A question is at most {QUESTION_MAX} characters.")
    if not isinstance(options, list) or not OPTIONS_MIN <= len(options) <= OPTIONS_MAX:
        raise TravelError("bad_vote", f"Give {OPTIONS_MIN} to {OPTIONS_MAX} options.")
    made = []
    for number, option in enumerate(options, 1):
        if not isinstance(option, dict):
            raise TravelError("bad_vote", "Every option is {label, value?}.")
        made.append(
            {
                "id": f"o{number}",
                **_OPTIONS[kind](ctx, trip, option.get("label"), option.get("value")),
            }
        )
    labels = [trips._fold(o["label"]) for o in made]
    if len(set(labels)) != len(labels):
        raise TravelError("bad_vote", "Two options are the same.")
    return {"kind": kind, "question": question, "options": made}


def parse(args: list[str]) -> tuple[str, str | None, list[dict[str, Any]]]:
    """``/trip vote …`` words → ``(kind, question, [{label}])``."""
    words = [part.strip() for word in args for part in word.replace("|", "\0|\0").split("\0")]
    words = [w for w in words if w]
    kind = words[0].lower() if words and words[0].lower() in QUESTIONS else "other"
    if kind != "other":
        words = words[1:]
    question = None
    if kind == "other":
        asked = next((i for i, w in enumerate(words) if w.endswith("?") and w != "|"), None)
        cut = 1 if asked is None or "|" in words[: asked + 1] else asked + 1
        question, words = " ".join(words[:cut]), words[cut:]
    groups: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            groups.append([])
        else:
            groups[-1].append(word)
    return kind, question, [{"label": " ".join(group)} for group in groups if group]


# --- the vote card ----------------------------------------------------------------------------


def find(trip: dict[str, Any], vote_id: Any) -> dict[str, Any]:
    for vote in trip.get("votes") or []:
        if vote["id"] == vote_id:
            return vote
    raise TravelError("unknown_vote", f"This trip has no vote {vote_id!r}.")


def vote_card(trip: dict[str, Any], vote: dict[str, Any]) -> Card:
    """The vote's own card: options as buttons with their tallies, updated in place."""
    counts = card.tallies(trip, vote)
    voted = sum(counts.values())
    shown = Card(card.clip(f"Vote · {vote['question']}", card.TITLE_MAX))
    lines = [f"{trip['title']} · {voted} of {len(trip.get('travellers') or {})} voted"]
    if vote["status"] == "closed":
        winner = next((o for o in vote["options"] if o["id"] == vote.get("winner")), None)
        lines.append(f"Closed: {winner['label']} won." if winner else "Closed.")
        shown.fields = [
            Field(card.clip(o["label"], 100), str(counts[o["id"]])) for o in vote["options"]
        ]
    else:
        lines.append("Travellers vote below; pressing another option changes your ballot.")
        for option in vote["options"]:
            value = f"{trip['id']}:{vote['id']}:{option['id']}"
            label = card.clip(f"{option['label']} ({counts[option['id']]})", 80)
            shown.buttons.append(Button("vote.cast", label, value=value))
        shown.buttons.append(
            Button(
                "vote.close", "Close vote", value=f"{trip['id']}:{vote['id']}", style="secondary"
            )
        )
    shown.text = "\n".join(lines)
    return shown


async def _redraw(ctx, trip: dict[str, Any], vote: dict[str, Any]) -> None:
    if vote.get("card_message_id"):
        await ctx.update_card(
            vote["card_message_id"], vote_card(trip, vote), conversation_id=trip["conversation_id"]
        )
    await store.refresh_card(ctx, trip)


# --- doing ------------------------------------------------------------------------------------


def _open_trip(doc: dict[str, Any], user_id: str | None) -> None:
    if doc.get("status") == "ended":
        raise TravelError("trip_ended", "This trip has ended: its votes are closed.")
    store.require_traveller(doc, user_id)


async def create(ctx, kind: Any, question: Any, options: Any) -> tuple[dict, dict[str, Any]]:
    """A new vote, its card posted → ``(vote, trip)``."""
    trip = await store.require_trip(ctx)
    _open_trip(trip, ctx.user_id)
    spec = build(ctx, trip, kind, question, options)

    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        _open_trip(doc, ctx.user_id)
        if sum(v["status"] == "open" for v in doc.get("votes") or []) >= OPEN_MAX:
            raise TravelError("bad_vote", f"At most {OPEN_MAX} open votes: close one first.")
        vote = {
            "id": itinerary.next_id(doc, "v"),
            **spec,
            "ballots": {},
            "status": "open",
            "winner": None,
            "created_by": ctx.user_id,
            "card_message_id": None,
        }
        doc.setdefault("votes", []).append(vote)
        return vote

    vote, trip = await store.update(ctx, trip["id"], edit)
    message_id = await ctx.send_card(vote_card(trip, vote))

    def keep_card(doc: dict[str, Any]) -> dict[str, Any]:
        mine = find(doc, vote["id"])
        mine["card_message_id"] = message_id
        return mine

    vote, trip = await store.update(ctx, trip["id"], keep_card)
    await store.refresh_card(ctx, trip)
    return vote, trip


async def cast(ctx, trip_id: str, vote_id: Any, option_id: Any) -> tuple[dict, dict[str, Any]]:
    """The invoker's ballot (a new one replaces theirs) → ``(vote, trip)``."""

    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        _open_trip(doc, ctx.user_id)
        vote = find(doc, vote_id)
        if vote["status"] != "open":
            raise TravelError("vote_closed", "This vote is closed.")
        if option_id not in {o["id"] for o in vote["options"]}:
            raise TravelError("bad_option", "That is not one of this vote's options.")
        vote["ballots"][ctx.user_id] = option_id
        return vote

    vote, trip = await store.update(ctx, trip_id, edit)
    await _redraw(ctx, trip, vote)
    return vote, trip


def _apply(ctx, doc: dict[str, Any], vote: dict[str, Any], option: dict[str, Any]) -> None:
    """The winner becomes the trip's: dates, destination, or a plan item."""
    value = option.get("value") or {}
    if vote["kind"] == "dates":
        doc["start"], doc["end"] = trips.check_dates(
            value["start"], value["end"], doc["destination"]["zone"]
        )
    elif vote["kind"] == "destination":
        doc["destination"] = value["destination"]
        doc["title"] = value["title"]
        if not any((doc.get("spent") or {}).values()) and not doc.get("booking"):
            doc["currency"] = trips.currency_of(value["destination"].get("country"))
    elif vote["kind"] == "activity":
        item = value["item"]
        itinerary.check_times(doc, item["start"], item["zone"], item["end"], item["end_zone"])
        itinerary.add_items(doc, [item], vote["created_by"])


async def close(ctx, trip_id: str, vote_id: Any) -> tuple[dict, dict[str, Any]]:
    """Close a vote and apply its winner → ``(vote, trip)``."""

    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        if doc.get("status") == "ended":
            raise TravelError("trip_ended", "This trip has ended: its votes are closed.")
        vote = find(doc, vote_id)
        if vote["status"] != "open":
            raise TravelError("vote_closed", "This vote is closed already.")
        if ctx.user_id not in (vote["created_by"], doc.get("created_by")):
            raise TravelError(
                "not_allowed", "Only who made the vote, or the trip's creator, closes it."
            )
        counts = card.tallies(doc, vote)
        top = max(counts.values())
        leaders = [option_id for option_id, n in counts.items() if n == top]
        if top == 0:
            raise TravelError("tie", "Nobody has voted yet.")
        if len(leaders) > 1:
            names = [o["label"] for o in vote["options"] if o["id"] in leaders]
            raise TravelError("tie", f"A tie between {' and '.join(names)}: one more ballot?")
        option = next(o for o in vote["options"] if o["id"] == leaders[0])
        try:
            _apply(ctx, doc, vote, option)
        except TravelError as exc:
            raise TravelError(exc.code, f"{option['label']} won, but: {exc.message}") from None
        vote["status"], vote["winner"] = "closed", option["id"]
        return vote

    vote, trip = await store.update(ctx, trip_id, edit)
    if vote.get("card_message_id"):
        await ctx.update_card(
            vote["card_message_id"], vote_card(trip, vote), conversation_id=trip["conversation_id"]
        )
    await itinerary.after_change(ctx, trip)
    return vote, trip


def result_text(trip: dict[str, Any], vote: dict[str, Any]) -> str:
    winner = next(o for o in vote["options"] if o["id"] == vote["winner"])
    votes = card.tallies(trip, vote)[winner["id"]]
    return f"Vote closed — {vote['question']} {winner['label']} ({votes} votes)."


# --- the command, the buttons, the views ------------------------------------------------------


async def vote_command(ctx, args: list[str]) -> Reply:
    if len(args) == 2 and args[0].lower() == "close":
        trip = await store.require_trip(ctx)
        vote, trip = await close(ctx, trip["id"], args[1].lower())
        return Reply(text=result_text(trip, vote))
    if not args:
        trip = await store.require_trip(ctx)
        open_votes = [v for v in trip.get("votes") or [] if v["status"] == "open"]
        lines = [f"{v['id']}: {v['question']} — {card.vote_summary(trip, v)}" for v in open_votes]
        return Reply(ephemeral="\n".join([*lines, USAGE]))
    kind, question, options = parse(args)
    await create(ctx, kind, question, options)
    return None


def _parts(value: Any, count: int) -> list[str]:
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != count:
        raise TravelError("bad_option", "That button is not one of this app's.")
    return parts


async def _chat_trip(ctx, trip_id: str) -> str:
    trip = await store.load(ctx, trip_id)
    if trip is None or trip.get("conversation_id") != ctx.conversation_id:
        raise TravelError("no_trip", "That trip is not this chat's (any more).")
    return trip_id


@answers
async def cast_button(ctx) -> Reply:
    trip_id, vote_id, option_id = _parts(ctx.value, 3)
    vote, _ = await cast(ctx, await _chat_trip(ctx, trip_id), vote_id, option_id)
    label = next(o["label"] for o in vote["options"] if o["id"] == option_id)
    return Reply(ephemeral=f"Your vote: {label}.")


@answers
async def close_button(ctx) -> Reply:
    trip_id, vote_id = _parts(ctx.value, 2)
    vote, trip = await close(ctx, await _chat_trip(ctx, trip_id), vote_id)
    return Reply(text=result_text(trip, vote))


@viewing
async def view_create(ctx) -> dict[str, Any]:
    params = ctx.params
    _, trip = await create(ctx, params.get("kind"), params.get("question"), params.get("options"))
    return itinerary.trip_answer(ctx, trip)


@viewing
async def view_cast(ctx) -> dict[str, Any]:
    trip = await store.require_trip(ctx)
    _, trip = await cast(ctx, trip["id"], ctx.params.get("vote_id"), ctx.params.get("option_id"))
    return itinerary.trip_answer(ctx, trip)


@viewing
async def view_close(ctx) -> dict[str, Any]:
    trip = await store.require_trip(ctx)
    vote, trip = await close(ctx, trip["id"], ctx.params.get("vote_id"))
    await ctx.send_text(result_text(trip, vote))
    return itinerary.trip_answer(ctx, trip)


SUBCOMMANDS = {"vote": vote_command}
ACTIONS = {"vote.cast": cast_button, "vote.close": close_button}
VIEWS = {"vote.create": view_create, "vote.cast": view_cast, "vote.close": view_close}
