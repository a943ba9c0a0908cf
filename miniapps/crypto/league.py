"""Group trading leagues: ``/crypto league start <2h | 3d | 3>``, ``/crypto league``,
``/crypto league join``, the **Join** button, the live leaderboard card and the podium. Paper
money only.

**What a member's score is: their own paper portfolio, measured from a snapshot taken when they
join** — not a second account. Joining records the value of the person's paper portfolio
(``accounts/<user>``: every asset, free and in orders, coins at the current market price) as
their starting value; from then on every order they place anywhere — ``/crypto buy``, the web
view, a copied trade — counts, and the leaderboard ranks members by their **return since
joining** (value now / value at joining - 1) at current, non-stale prices. A newcomer's
portfolio is the fresh 10 000 USDT, so for them the return is the value's change from 10 000.
Why not a separate league account (``accounts/<user>@<league>``): it would need a second way to
place every order, a second balance, orders and portfolio in every command and view, and it
would let a person trade with themselves between the two accounts (self-trade prevention only
knows one user) to move paper money into the league one. With the snapshot there is one ledger,
no new trading surface and nothing to move; ranking by return makes portfolios of different
sizes comparable. The catch, stated on the card: what you held when joining counts with its
price moves (holding is a decision too).

**One league per group at a time**, one document ``leagues/<chat digest>`` (the group's current
league, the last ``PAST_KEPT`` results in ``past``): ``start`` replaces it by a conditional write
only when no league is running there (two starts at once: one league, the other is told one is
running). It starts at once and ends after the duration (1 hour to 30 days).

**Timers** (keys carry the league id, so a timer of an earlier league finds nothing to do):

- ``league.end`` (at the end): computes the final standings at fresh prices and marks the league
  ``ended`` with its podium in **one conditional write**; only the firing that wrote it posts the
  podium card, so two firings at once (two nodes, a retry) post one podium. A firing that failed
  after the write and before posting is retried by the host, and the retry (``ctx.attempt > 1``)
  posts what was marked but not posted. When a price the final standings need is stale, the end
  waits for a fresh one (checked every minute, at most ``FINAL_WAIT_MS``; after that the stale
  price is used and the podium says so). The standings are taken when this timer runs — normally
  within seconds of the end (trades in between count).
- ``league.board`` (the live leaderboard, **throttled**): recomputes the standings and updates the
  card in place only when they changed; at most once per ``BOARD_STEP_MS`` boundary (5 s), backing
  off to ``BOARD_IDLE_MAX_MS`` while nothing changes; a Join brings it back to the next 5 s
  boundary (the same boundary again moves nothing, so joins never push a refresh away). Each
  refresh stores the standings with a conditional write (``board_seq``): of two racing firings
  only the one that wrote updates the card. A stale price skips a refresh (the card keeps the
  last standings at fresh prices).

Data: ``leagues/<chat digest>`` ``{id, conversation_id, started_by, started_at, ends_at, status:
running|ended, message_id, members: {user: {name, joined_at, start_value}}, board: [{user, name,
value, pct}], board_seq, board_at, idle, ended_at?, final_stale?, podium_posted?,
podium_message_id?, past: [{id, ended_at, podium}]}`` (Decimals as strings).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from decimal import Decimal
from typing import Any

import clock
import exchange
import markets
import prices
from alerts import edit_doc
from markets import dec, fmt
from portfolio import signed
from texts import PAPER
from trading import number

from sdk import Button, Card, Field, HostError, NotFound, Reply, ScopeDenied
from sdk.documents import update_doc

log = logging.getLogger("app.crypto.league")

LEAGUES = "leagues"
END_TIMER, BOARD_TIMER = "league.end", "league.board"
HOUR_MS = 3_600_000
MIN_HOURS, MAX_HOURS = 1, 30 * 24
MAX_MEMBERS = 50
ROWS_SHOWN = 15
BOARD_STEP_MS = 5_000  # the live card is refreshed at most once per 5-second boundary
BOARD_IDLE_MAX_MS = 30_000  # while nothing changes the refreshes back off to this
FINAL_RETRY_MS = 60_000  # the end waits this long for a fresh price, again and again …
FINAL_WAIT_MS = 3_600_000  # … for at most an hour past the end
READS_AT_ONCE = 8  # members' accounts read at once (the host caps an app's calls in flight)
PAST_KEPT = 5
ATTEMPTS = 60
CENT = Decimal("0.01")
MEDALS = ("🥇", "🥈", "🥉")
DURATION_RE = re.compile(r"^(\d{1,4})([hd]?)$")
LEAGUE_ID_RE = re.compile(r"^lg-[0-9a-f]{16}$")
USAGE = (
    "Usage: /crypto league start <duration> — e.g. 2h (hours) or 3d (days), 1 hour to 30 days"
    " · /crypto league (the leaderboard) · /crypto league join"
)
NOT_IN_GROUP = "Leagues run in groups: start one in a group chat."


class LeagueError(Exception):
    """A refusal with a stable ``code`` and a ``message`` to show as is. Nothing written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def private(content: str | Card) -> Reply:
    return Reply(ephemeral=content)


def chat_key(conversation_id: str) -> str:
    return hashlib.sha256(conversation_id.encode()).hexdigest()[:24]


def parse_duration(args: list[str]) -> int:
    """``2h`` / ``3d`` / ``3`` (days) → milliseconds; ``LeagueError`` otherwise."""
    if len(args) != 1:
        raise LeagueError("usage", USAGE)
    match = DURATION_RE.match(args[0].strip().lower())
    if match is None:
        raise LeagueError(
            "invalid_duration", f"{args[0][:20]!r} is not a duration: say 2h or 3d. {USAGE}"
        )
    count, unit = int(match.group(1)), match.group(2) or "d"
    hours = count if unit == "h" else count * 24
    if not MIN_HOURS <= hours <= MAX_HOURS:
        raise LeagueError("invalid_duration", "A league lasts from 1 hour (1h) to 30 days (30d).")
    return hours * HOUR_MS


def next_boundary(now: int, ahead_ms: int = 1000) -> int:
    """The first ``BOARD_STEP_MS`` boundary at least ``ahead_ms`` from ``now``."""
    return ((now + ahead_ms - 1) // BOARD_STEP_MS + 1) * BOARD_STEP_MS


async def load(ctx, conversation_id: str | None) -> dict | None:
    if not conversation_id:
        return None
    return await ctx.storage_get(LEAGUES, chat_key(conversation_id))


def running(league: dict | None) -> bool:
    return bool(league) and league.get("status") == "running"


# --- standings -------------------------------------------------------------------------------


async def holdings_of(ctx, user: str) -> dict[str, Decimal]:
    """What the person holds (free + in orders), per asset; the fresh start when they never
    traded (nothing is written)."""
    account = await exchange.get_account(ctx, user)
    assets = set(account.get("free") or {}) | set(account.get("reserved") or {})
    return {a: exchange.held_by(account, a) for a in assets if exchange.held_by(account, a)}


async def prices_for(
    ctx, holdings: list[dict[str, Decimal]], *, allow_stale: bool = False
) -> tuple[dict[str, Decimal], bool] | None:
    """The market price of every coin held in ``holdings`` (the quote asset is 1): ``(prices,
    any stale)``; None when one of them is stale (unless ``allow_stale``) or has no price."""
    coins = sorted({a for h in holdings for a in h if a != markets.QUOTE})
    found: dict[str, Decimal] = {markets.QUOTE: Decimal(1)}
    if not coins:
        return found, False
    try:
        quotes = await prices.quotes(ctx, [c.lower() for c in coins])
    except prices.PriceError:
        return None
    stale = False
    for coin in coins:
        quote = quotes.get(coin.lower())
        if quote is None:
            return None
        if quote.stale and not allow_stale:
            return None
        stale = stale or quote.stale
        found[coin] = quote.price
    return found, stale


def value_at(holdings: dict[str, Decimal], priced: dict[str, Decimal]) -> Decimal:
    return sum((amount * priced[asset] for asset, amount in holdings.items()), Decimal(0))


async def _gather_bounded(work: list) -> list:
    """Await ``work`` (coroutines) at most ``READS_AT_ONCE`` at a time, in order."""
    results: list = []
    for start in range(0, len(work), READS_AT_ONCE):
        results.extend(await asyncio.gather(*work[start : start + READS_AT_ONCE]))
    return results


async def standings(
    ctx, league: dict, *, allow_stale: bool = False
) -> tuple[list[dict[str, str]], bool] | None:
    """The members ranked by return since joining, at current prices: ``(rows, stale)``; rows
    ``{user, name, value, pct}`` (Decimal strings). None when a price needed is stale (unless
    ``allow_stale``) or missing."""
    members = league.get("members") or {}
    users = sorted(members)
    held = await _gather_bounded([holdings_of(ctx, u) for u in users])
    priced = await prices_for(ctx, held, allow_stale=allow_stale)
    if priced is None:
        return None
    table, stale = priced
    ranked = []
    for user, holdings in zip(users, held, strict=True):
        member = members[user]
        start, value = dec(member["start_value"]), value_at(holdings, table)
        ratio = value / start if start else Decimal(0)
        ranked.append((-ratio, member["joined_at"], user, member["name"], value, ratio))
    ranked.sort()
    rows = [
        {
            "user": user,
            "name": name,
            "value": fmt(value.quantize(CENT)),
            "pct": fmt(((ratio - 1) * 100).quantize(CENT)),
        }
        for _, _, user, name, value, ratio in ranked
    ]
    return rows, stale


# --- cards -----------------------------------------------------------------------------------


def row_text(row: dict[str, str], locale: str | None) -> str:
    return f"{signed(row['pct'], locale)} % · {number(row['value'], locale)} {markets.QUOTE}"


def board_fields(rows: list[dict[str, str]], locale: str | None) -> list[Field]:
    return [
        Field(f"{n}. {row['name']}"[:100], row_text(row, locale))
        for n, row in enumerate(rows[:ROWS_SHOWN], 1)
    ]


def league_card(ctx, league: dict) -> Card:
    """The league's card: live (with Join) while it runs, the final standings once ended."""
    rows = league.get("board") or []
    members = len(league.get("members") or {})
    more = len(rows) - ROWS_SHOWN
    tail = f" … and {more} more." if more > 0 else ""
    if league["status"] == "ended":
        ended = prices.format_moment(league.get("ended_at") or league["ends_at"], ctx)
        text = f"Ended {ended}. Final standings by return since joining.{tail} {PAPER}"
        card = Card("🏁 Trading league · final", text=text, fields=board_fields(rows, ctx.locale))
        card.buttons.append(Button.webview("Open Crypto", path="#portfolio"))
        return card
    ends = prices.format_moment(league["ends_at"], ctx)
    lead = (
        f"{members} trader{'s' if members != 1 else ''} · ends {ends}."
        if members
        else f"Ends {ends}. Nobody has joined yet."
    )
    text = (
        f"{lead} Press Join: your paper portfolio counts from then (what you hold included),"
        f" valued at market prices and ranked by return — then trade as usual.{tail} {PAPER}"
    )
    card = Card("🏆 Trading league", text=text, fields=board_fields(rows, ctx.locale))
    card.buttons.append(Button("league.join", "Join", value=league["id"], style="primary"))
    card.buttons.append(Button.webview("Trade", path="#trade"))
    return card


def podium_card(ctx, league: dict) -> Card:
    rows = league.get("board") or []
    fields = [
        Field(f"{medal} {row['name']}"[:100], row_text(row, ctx.locale))
        for medal, row in zip(MEDALS, rows, strict=False)
    ]
    if not rows:
        text = f"The league is over; nobody joined it. {PAPER}"
    else:
        text = f"{len(rows)} trader{'s' if len(rows) != 1 else ''} took part. {PAPER}"
    if league.get("final_stale"):
        text = f"Some prices were stale at the end: the standings use the last ones. {text}"
    return Card("🏆 League podium", text=text, fields=fields)


# --- starting --------------------------------------------------------------------------------


async def do_start(ctx, duration_ms: int) -> dict:
    """Start the group's league now, for ``duration_ms``; the league as stored.
    ``LeagueError`` ``not_in_group``, ``league_running``, ``busy`` — nothing written then."""
    if ctx.conversation_type != "group" or not ctx.conversation_id:
        raise LeagueError("not_in_group", NOT_IN_GROUP)
    now = clock.now_ms()
    league_id = "lg-" + secrets.token_hex(8)  # new each time: a refused start's timer is its own
    payload = {"chat": chat_key(ctx.conversation_id), "league": league_id}
    # The end first, keyed by this league: a league never runs without its end, and a timer
    # whose league was not written (the start refused) finds nothing to do — and is cancelled.
    try:
        await ctx.schedule(
            END_TIMER, at=now + duration_ms, key=f"{END_TIMER}:{league_id}", payload=payload
        )
    except HostError as exc:
        if exc.code != "too_many_timers":
            raise
        raise LeagueError("busy", "Too much is scheduled right now; try again later.") from None
    fresh = {
        "id": league_id,
        "conversation_id": ctx.conversation_id,
        "started_by": ctx.user_id,
        "started_at": now,
        "ends_at": now + duration_ms,
        "status": "running",
        "message_id": None,
        "members": {},
        "board": [],
        "board_seq": 0,
        "board_at": None,
        "idle": 0,
    }

    def start(doc: dict) -> dict | None:
        if running(doc):
            return dict(doc)
        past = list(doc.get("past") or [])
        if doc.get("status") == "ended":
            past = [*past, {k: doc.get(k) for k in ("id", "ended_at", "board")}][-PAST_KEPT:]
        doc.clear()
        doc.update(fresh, past=past)
        return None

    key = chat_key(ctx.conversation_id)
    other, league = await edit_doc(ctx, LEAGUES, key, start)
    if other is not None:
        await ctx.cancel_schedule(f"{END_TIMER}:{league_id}")
        ends = prices.format_moment(other["ends_at"], ctx)
        raise LeagueError(
            "league_running", f"A league is running in this group until {ends}: /crypto league"
        )
    assert league is not None
    message_id = await ctx.send_card(league_card(ctx, league))
    await set_message(ctx, key, league_id, message_id)
    return {**league, "message_id": message_id}


async def set_message(ctx, key: str, league_id: str, message_id: str) -> None:
    """The card kept up to date is ``message_id`` (the newest posted)."""

    def edit(doc: dict | None) -> None:
        if doc is not None and doc.get("id") == league_id:
            doc["message_id"] = message_id

    await update_doc(ctx, LEAGUES, key, edit, attempts=ATTEMPTS)


# --- joining ---------------------------------------------------------------------------------


async def member_name(ctx) -> str:
    """The joiner's display name when they let the app see their profile, else a stand-in."""
    fallback = f"Trader {str(ctx.user_id)[-4:]}"
    try:
        profile = await ctx.get_profile()
    except (ScopeDenied, HostError):
        return fallback
    return str(profile.get("display_name") or fallback)[:40]


async def do_join(ctx, league_id: str | None = None) -> tuple[str, dict]:
    """The invoker joins the group's running league (``league_id``: the one the card was
    for): ``("joined" | "member", league)``. ``LeagueError`` ``not_in_group``, ``no_league``,
    ``league_over``, ``league_full``, ``stale_price`` — nothing written then."""
    if ctx.conversation_type != "group" or not ctx.conversation_id:
        raise LeagueError("not_in_group", NOT_IN_GROUP)
    key, user = chat_key(ctx.conversation_id), ctx.user_id
    league = await ctx.storage_get(LEAGUES, key)
    now = clock.now_ms()

    def check(doc: dict | None) -> str | None:
        if not doc or not doc.get("id"):
            return "no_league"
        if league_id is not None and doc["id"] != league_id:
            return "league_over"  # the card was an earlier league's
        if user in (doc.get("members") or {}):
            return "member"
        if doc.get("status") != "running" or now >= doc["ends_at"]:
            return "league_over"
        if len(doc.get("members") or {}) >= MAX_MEMBERS:
            return "league_full"
        return None

    refused = check(league)
    if refused == "member":
        return "member", league  # type: ignore[return-value]
    if refused is not None:
        raise LeagueError(refused, refusal(refused))

    async def valued() -> tuple[dict[str, Decimal], Any]:
        holdings = await holdings_of(ctx, user)
        return holdings, await prices_for(ctx, [holdings])

    # The name meanwhile: the first time, the host waits briefly for the joiner's consent.
    (holdings, priced), name = await asyncio.gather(valued(), member_name(ctx))
    if priced is None:
        raise LeagueError(
            "stale_price",
            "No fresh market price for what you hold right now: try joining in a minute.",
        )
    start_value = value_at(holdings, priced[0])
    if start_value <= 0:
        raise LeagueError("no_funds", f"Your paper portfolio is empty. {PAPER}")

    def join(doc: dict | None) -> str:
        outcome = check(doc)
        if outcome is not None:
            return outcome
        assert doc is not None
        doc["members"] = {
            **(doc.get("members") or {}),
            user: {"name": name, "joined_at": now, "start_value": fmt(start_value)},
        }
        return "joined"

    outcome, doc = await update_doc(ctx, LEAGUES, key, join, attempts=ATTEMPTS)
    if outcome not in ("joined", "member"):
        raise LeagueError(outcome, refusal(outcome))
    assert doc is not None
    if outcome == "joined":
        await schedule_board(ctx, doc)
    return outcome, doc


def refusal(code: str) -> str:
    return {
        "no_league": "No league is running in this group: /crypto league start 3d",
        "league_over": "This league has ended.",
        "league_full": f"This league is full (at most {MAX_MEMBERS} traders).",
    }[code]


async def schedule_board(ctx, league: dict, ahead_ms: int = 1000) -> None:
    """The live card's next refresh, at the first 5 s boundary ``ahead_ms`` from now (read
    now: the work before may have taken a while). One timer per league: the same key moves it."""
    payload = {"chat": chat_key(league["conversation_id"]), "league": league["id"]}
    at = next_boundary(clock.now_ms(), ahead_ms)
    try:
        await ctx.schedule(BOARD_TIMER, at=at, key=f"{BOARD_TIMER}:{league['id']}", payload=payload)
    except HostError as exc:  # too many timers: the card catches up at the end
        log.warning("league board not scheduled: %s", exc.code)


def joined_text(ctx, league: dict, outcome: str) -> str:
    ends = prices.format_moment(league["ends_at"], ctx)
    if outcome == "member":
        return f"You are in this league already; it ends {ends}."
    start = league["members"][ctx.user_id]["start_value"]
    return (
        f"You joined the league: your paper portfolio ({number(start, ctx.locale)} "
        f"{markets.QUOTE} now) counts from now until {ends}. Trade as usual: /crypto buy … "
        f"{PAPER}"
    )


# --- commands and buttons --------------------------------------------------------------------


async def cmd_league(ctx, args: list[str]) -> Reply | None:
    """``/crypto league`` (post the card again), ``… start <duration>``, ``… join``."""
    try:
        if args and args[0].lower() == "start":
            duration = parse_duration(args[1:])
            await do_start(ctx, duration)
            return None
        if args and args[0].lower() == "join" and len(args) == 1:
            outcome, league = await do_join(ctx)
            return private(joined_text(ctx, league, outcome))
        if args:
            raise LeagueError("usage", USAGE)
        return await show(ctx)
    except LeagueError as exc:
        return private(exc.message)


async def show(ctx) -> Reply:
    """``/crypto league``: the group's league card, posted again (the new one is kept live)."""
    if ctx.conversation_type != "group" or not ctx.conversation_id:
        raise LeagueError("not_in_group", NOT_IN_GROUP)
    league = await load(ctx, ctx.conversation_id)
    if league is None:
        raise LeagueError("no_league", refusal("no_league"))
    message_id = await ctx.send_card(league_card(ctx, league))
    if running(league):
        await set_message(ctx, chat_key(ctx.conversation_id), league["id"], message_id)
        await schedule_board(ctx, league)
    return Reply()


async def on_join(ctx) -> Reply:
    """**Join** on the league card (value: the league id)."""
    value = ctx.value or ""
    if not LEAGUE_ID_RE.match(value):
        return private(refusal("league_over"))
    try:
        outcome, league = await do_join(ctx, value)
    except LeagueError as exc:
        return private(exc.message)
    return private(joined_text(ctx, league, outcome))


# --- timers ----------------------------------------------------------------------------------


async def _timer_league(ctx) -> tuple[str, dict] | None:
    payload = ctx.payload or {}
    key, league_id = payload.get("chat"), payload.get("league")
    if not isinstance(key, str) or not isinstance(league_id, str):
        return None
    league = await ctx.storage_get(LEAGUES, key)
    if league is None or league.get("id") != league_id:
        return None  # a timer of an earlier league
    return key, league


async def update_live_card(ctx, league: dict) -> None:
    if not league.get("message_id"):
        return
    try:
        await ctx.update_card(
            league["message_id"], league_card(ctx, league), league["conversation_id"]
        )
    except NotFound:
        log.info("league card %s is gone", league["message_id"])


async def on_board(ctx) -> None:
    """``league.board``: recompute the standings; update the card when they changed (only the
    firing whose conditional write stored them); next refresh at a 5 s boundary, later while
    nothing changes."""
    found = await _timer_league(ctx)
    if found is None:
        return
    key, league = found
    now = clock.now_ms()
    if not running(league) or now >= league["ends_at"]:
        return  # the end takes over
    seq = league.get("board_seq", 0)
    computed = await standings(ctx, league)
    if computed is None:
        await schedule_board(ctx, league, BOARD_IDLE_MAX_MS)
        return
    rows, _ = computed

    def store(doc: dict | None) -> str:
        if doc is None or doc.get("id") != league["id"] or not running(doc):
            return "gone"
        if doc.get("board_seq", 0) != seq:
            return "lost"  # another firing stored newer standings meanwhile
        if set(doc.get("members") or {}) != {r["user"] for r in rows}:
            return "lost"  # someone joined since: the next refresh counts them
        changed = rows != doc.get("board")
        doc.update(board_seq=seq + 1, idle=0 if changed else int(doc.get("idle") or 0) + 1)
        if changed:
            doc.update(board=rows, board_at=now)
        return "changed" if changed else "same"

    outcome, doc = await update_doc(ctx, LEAGUES, key, store, attempts=ATTEMPTS)
    if outcome == "gone" or doc is None:
        return
    if outcome == "changed":
        await update_live_card(ctx, doc)
    idle = int(doc.get("idle") or 0)
    delay = min(BOARD_STEP_MS * (2 ** min(idle, 8)), BOARD_IDLE_MAX_MS)
    if outcome == "lost":
        delay = BOARD_STEP_MS
    await schedule_board(ctx, doc, delay)


async def on_end(ctx) -> None:
    """``league.end``: the final standings and the podium, exactly once (see the module doc)."""
    found = await _timer_league(ctx)
    if found is None:
        return
    key, league = found
    if league.get("status") == "ended":
        if ctx.attempt > 1 and not league.get("podium_posted"):
            await post_podium(ctx, key, league)
        return
    now = clock.now_ms()
    computed = await standings(ctx, league)
    stale = False
    if computed is None:
        if now < league["ends_at"] + FINAL_WAIT_MS:
            await ctx.schedule(
                END_TIMER, at=now + FINAL_RETRY_MS, key=ctx.timer_key, payload=ctx.payload
            )
            return
        computed = await standings(ctx, league, allow_stale=True)
        if computed is None:  # no price at all: the coins are valued at nothing, said so
            computed, stale = await standings_without_prices(ctx, league), True
    rows, stale = computed[0], stale or computed[1]

    def finish(doc: dict | None) -> bool:
        if doc is None or doc.get("id") != league["id"] or doc.get("status") != "running":
            return False
        doc.update(
            status="ended",
            ended_at=now,
            board=rows,
            board_seq=int(doc.get("board_seq") or 0) + 1,
            final_stale=stale,
            podium_posted=False,
        )
        return True

    won, doc = await update_doc(ctx, LEAGUES, key, finish, attempts=ATTEMPTS)
    if won and doc is not None:
        await post_podium(ctx, key, doc)


async def standings_without_prices(ctx, league: dict) -> list[dict[str, str]]:
    """The last resort after ``FINAL_WAIT_MS`` with no price at all: cash only."""
    members = league.get("members") or {}
    rows = []
    for user in sorted(members, key=lambda u: (members[u]["joined_at"], u)):
        holdings = await holdings_of(ctx, user)
        value = holdings.get(markets.QUOTE, Decimal(0))
        start = dec(members[user]["start_value"])
        pct = ((value / start - 1) * 100) if start else Decimal(0)
        rows.append((-pct, members[user]["joined_at"], user, value, pct))
    rows.sort()
    return [
        {
            "user": user,
            "name": members[user]["name"],
            "value": fmt(value.quantize(CENT)),
            "pct": fmt(pct.quantize(CENT)),
        }
        for _, _, user, value, pct in rows
    ]


async def post_podium(ctx, key: str, league: dict) -> None:
    """Post the podium into the group, note it posted, and turn the live card into the final
    standings (no Join)."""
    message_id = await ctx.send_card(podium_card(ctx, league))

    def posted(doc: dict | None) -> None:
        if doc is not None and doc.get("id") == league["id"]:
            doc.update(podium_posted=True, podium_message_id=message_id)

    await update_doc(ctx, LEAGUES, key, posted, attempts=ATTEMPTS)
    await ctx.cancel_schedule(f"{BOARD_TIMER}:{league['id']}")
    await update_live_card(ctx, league)


# --- web view --------------------------------------------------------------------------------


async def view_league(ctx) -> dict[str, Any]:
    """``league.get``: the league of the chat the web view was opened in — ``{league: null |
    {id, status, started_at, ends_at, members, joined, board, podium}, paper}``."""
    league = await load(ctx, ctx.conversation_id)
    if league is None:
        return {"league": None, "paper": PAPER}
    board = league.get("board") or []
    return {
        "league": {
            "id": league["id"],
            "status": league["status"],
            "started_at": league["started_at"],
            "ends_at": league["ends_at"],
            "members": len(league["members"]),
            "joined": ctx.user_id in league["members"],
            "board": [{k: r[k] for k in ("name", "value", "pct")} for r in board],
            "podium": [r["name"] for r in board[:3]] if league["status"] == "ended" else None,
        },
        "paper": PAPER,
    }


SUBCOMMANDS = {"league": cmd_league}
ACTIONS = {"league.join": on_join}
TIMERS = {END_TIMER: on_end, BOARD_TIMER: on_board}
VIEWS = {"league.get": view_league}
