"""Poll: ``/poll "Question?" option1 option2 …`` posts a card with one button per option.

Pressing a button votes (pressing another changes the vote, pressing the same again keeps it);
the creator's "Close poll" button ends it and the card shows the results. Everything lives in the
conversation's group state, ``{"polls": {poll_id: {question, options, votes: {per-app user id:
option index}, creator, closed, message_id}}}``, written with ``expected_version`` and retried on
conflict, so any number of members may vote at once.
"""

from __future__ import annotations

import secrets
from typing import Any

from sdk import App, Button, Card, Field, QuotaExceeded, Reply

app = App("poll")

MIN_OPTIONS = 2
# A card has at most 10 buttons and one of them is "Close poll".
MAX_OPTIONS = 9
QUESTION_MAX = 200
OPTION_MAX = 60
TITLE_MAX = 100
CLOSED_POLLS_KEPT = 10  # older closed polls leave the group state when a new poll starts
USAGE = f'Usage: /poll "Question?" option1 option2 … ({MIN_OPTIONS}-{MAX_OPTIONS} options)'


def check_poll_input(args: list[str]) -> tuple[str, list[str]] | str:
    """The question and options of ``/poll`` arguments, or the reason they are not a poll."""
    if len(args) < 1 + MIN_OPTIONS:
        return f"A poll needs a question and at least {MIN_OPTIONS} options. {USAGE}"
    question, options = args[0].strip(), [option.strip() for option in args[1:]]
    if not question:
        return f"The question is empty. {USAGE}"
    if len(question) > QUESTION_MAX:
        return f"The question is {len(question)} characters long; the limit is {QUESTION_MAX}."
    if len(options) > MAX_OPTIONS:
        return f"A poll has at most {MAX_OPTIONS} options; you gave {len(options)}."
    for option in options:
        if not option:
            return "An option is empty."
        if len(option) > OPTION_MAX:
            return f"The option {option[:20]!r}… is longer than {OPTION_MAX} characters."
    folded = [option.casefold() for option in options]
    if len(set(folded)) != len(folded):
        return "Two options are the same."
    return question, options


def render_card(poll_id: str, poll: dict[str, Any]) -> Card:
    """The card of a poll: counts per option, vote buttons and "Close poll" while open, the
    results once closed."""
    counts = [0] * len(poll["options"])
    for choice in poll["votes"].values():
        counts[choice] += 1
    total = sum(counts)
    question = poll["question"]
    title = question if len(question) <= TITLE_MAX else question[: TITLE_MAX - 1] + "…"
    lines = [question] if title != question else []
    fields = [
        Field(
            option,
            f"{count} vote{'s' if count != 1 else ''}"
            + (f" · {round(100 * count / total)}%" if total else ""),
        )
        for option, count in zip(poll["options"], counts, strict=True)
    ]
    if poll["closed"]:
        if total:
            best = max(counts)
            winners = [o for o, c in zip(poll["options"], counts, strict=True) if c == best]
            lines.append(
                f"Closed · {total} vote{'s' if total != 1 else ''} · "
                f"{' and '.join(winners)} {'wins' if len(winners) == 1 else 'tie'}"
            )
        else:
            lines.append("Closed · no votes")
        return Card(title=title, text="\n".join(lines), fields=fields)
    lines.append(f"{total} vote{'s' if total != 1 else ''} · tap an option to vote")
    buttons = [
        Button("vote", f"{option} ({count})", value=f"{poll_id}:{index}", style="primary")
        for index, (option, count) in enumerate(zip(poll["options"], counts, strict=True))
    ]
    buttons.append(Button("close", "Close poll", value=poll_id, style="danger"))
    return Card(title=title, text="\n".join(lines), fields=fields, buttons=buttons)


def prune_closed(polls: dict[str, Any]) -> None:
    """Drop all but the newest ``CLOSED_POLLS_KEPT`` closed polls (their cards stay as they
    are), so the group state stays well under its size limit."""
    closed = [poll_id for poll_id, poll in polls.items() if poll["closed"]]
    for poll_id in closed[:-CLOSED_POLLS_KEPT] if CLOSED_POLLS_KEPT else closed:
        del polls[poll_id]


async def refresh_card(ctx, poll_id: str, rendered: dict[str, Any]) -> None:
    """Update the poll's card from ``rendered``, then again while the poll kept changing, so the
    last update written always shows the latest votes even when presses race."""
    while rendered.get("message_id"):  # None: start_poll refreshes once the card is bound
        await ctx.update_card(rendered["message_id"], render_card(poll_id, rendered))
        latest = (await ctx.get_group_state()).state.get("polls", {}).get(poll_id)
        if latest is None or latest == rendered:
            return
        rendered = latest


@app.command("poll")
async def start_poll(ctx) -> Reply | None:
    checked = check_poll_input(ctx.args)
    if isinstance(checked, str):
        return Reply(ephemeral=checked)
    question, options = checked
    poll_id = secrets.token_hex(4)
    poll = {
        "question": question,
        "options": options,
        "votes": {},
        "creator": ctx.user_id,
        "closed": False,
    }

    # The poll is in group state before its card exists, so a press that arrives the moment
    # the card does finds it; the card's message id is bound to it right after.
    def add_poll(state: dict[str, Any]) -> None:
        polls = state.setdefault("polls", {})
        prune_closed(polls)
        polls[poll_id] = {**poll, "message_id": None}

    try:
        await ctx.update_group_state(add_poll)
    except QuotaExceeded:
        return Reply(ephemeral="This chat has too many open polls; close some first.")
    message_id = await ctx.send_card(render_card(poll_id, poll))

    def bind(state: dict[str, Any]) -> dict[str, Any] | None:
        bound = state.get("polls", {}).get(poll_id)
        if bound is not None and bound["message_id"] is None:
            bound["message_id"] = message_id
        return bound

    bound = await ctx.update_group_state(bind)
    if bound is not None and bound != {**poll, "message_id": message_id}:
        await refresh_card(ctx, poll_id, bound)  # votes came in while the card was posted
    return None


def find_poll(state: dict[str, Any], poll_id: str, message_id: str) -> dict[str, Any] | None:
    """The poll ``poll_id`` if it belongs to the card ``message_id`` (a value copied from
    another card, or made up, finds nothing)."""
    poll = state.get("polls", {}).get(poll_id)
    # message_id None: the card is being posted right now (see start_poll).
    if poll is None or poll["message_id"] not in (None, message_id):
        return None
    return poll


@app.action("vote")
async def vote(ctx) -> Reply | None:
    poll_id, _, index_text = (ctx.value or "").partition(":")

    def cast(state: dict[str, Any]) -> str | dict[str, Any]:
        poll = find_poll(state, poll_id, ctx.message_id)
        if poll is None or not index_text.isdigit() or int(index_text) >= len(poll["options"]):
            return "This poll no longer exists."
        if poll["closed"]:
            return "This poll is closed."
        poll["votes"][ctx.user_id] = int(index_text)
        return poll

    outcome = await ctx.update_group_state(cast)
    if isinstance(outcome, str):
        return Reply(ephemeral=outcome)
    await refresh_card(ctx, poll_id, outcome)
    return None


@app.action("close")
async def close(ctx) -> Reply | None:
    poll_id = ctx.value or ""

    def end(state: dict[str, Any]) -> str | dict[str, Any]:
        poll = find_poll(state, poll_id, ctx.message_id)
        if poll is None:
            return "This poll no longer exists."
        if poll["creator"] != ctx.user_id:
            return "Only the person who started this poll can close it."
        poll["closed"] = True
        return poll

    outcome = await ctx.update_group_state(end)
    if isinstance(outcome, str):
        return Reply(ephemeral=outcome)
    await refresh_card(ctx, poll_id, outcome)
    return None
