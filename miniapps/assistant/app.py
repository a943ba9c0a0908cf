"""The assistant: `/ai <question>` wherever it is installed, an @mention or a reply to it in a
group, and any message in your service chat with it. See README.md in this folder.

How an answer goes: the question becomes the model's input (``prompts``), a streaming message is
started in the chat (``messages.stream_start``) and the model is asked with ``ai.chat``
(``stream_to`` that message: the platform streams the text into it as it comes, throttled). The
model answers asynchronously: ``ai.completed`` arrives as an event. When it asked for tools
(``tools``: other apps' read-only tools), each is run through the platform (``apps.call_tool``:
the tool app's card appears in the chat), their results go back to the model and it continues
into the same message — at most ``MAX_ROUNDS`` times. Then the stream is stopped: the message
keeps its final text. ``/ai stop`` cancels and keeps what was written.

Nothing the model says is executed: the assistant has no payment, booking or joining capability
(see its manifest), and tools are read-only by the platform's rule.

Storage: ``runs/<request_id>`` — one model request in flight and what the conversation with the
model holds so far; ``active/<conversation_id>:<user>`` — the user's answer being streamed here
(for ``/ai stop``); ``shared/<ephemeral_id>`` — a catch-up its reader may share.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import prompts
import tools

from sdk import App, Button, Card, HostError, Reply

app = App("assistant")
log = logging.getLogger("assistant")

RUNS, ACTIVE, SHARED = "runs", "active", "shared"
# Who asks / reads, as the model is told (the assistant does not ask people for their names).
ASKER, READER = "The person asking", "the reader"
MAX_ROUNDS = 3  # tool rounds per answer
TOOL_RESULT_MAX = 6000  # characters of a tool's result handed back to the model
USAGE = (
    "Ask me anything: /ai <question> · /ai summary (what you missed here) · "
    "/ai translate <language> (reply to a message) · /ai stop"
)


def _active_key(ctx) -> str:
    return f"{ctx.conversation_id}:{ctx.user_id}"


async def _tools(ctx) -> tuple[list[dict[str, Any]], dict[str, tuple]]:
    try:
        listed = await ctx.app_tools()
    except HostError as exc:
        log.warning("no tools: %s", exc)
        return [], {}
    return tools.as_functions(listed)


def _refusal(exc: HostError) -> str:
    if exc.code == "ai_not_configured":
        return "The assistant has no model on this server yet (" + exc.message + ")."
    if exc.code == "ai_quota_exceeded":
        return "The assistant has used up its allowance for now: " + exc.message
    return f"The assistant cannot answer right now ({exc.code})."


async def ask(
    ctx,
    messages: list[dict[str, Any]],
    kind: str = "answer",
    *,
    with_tools: bool = True,
    stream: bool = True,
) -> Reply | None:
    """Start one answer: the streaming message (unless ``stream`` is off), the model request,
    and the run that the ``ai.completed`` event continues."""
    functions, names = await _tools(ctx) if with_tools else ([], {})
    message_id = await ctx.stream_start() if stream else None
    try:
        request_id = await ctx.ai_chat(messages, tools=functions or None, stream_to=message_id)
    except HostError as exc:
        if message_id:
            await ctx.stream_stop(message_id, _refusal(exc))
            return None
        return Reply(ephemeral=_refusal(exc))
    run = {
        "kind": kind,
        "conversation_id": ctx.conversation_id,
        "user_id": ctx.user_id,
        "stream": message_id,
        "messages": messages,
        "names": {name: list(target) for name, target in names.items()},
        "functions": functions,
        "rounds": 0,
    }
    await ctx.storage_put(RUNS, request_id, run)
    if message_id:
        await ctx.storage_put(
            ACTIVE, _active_key(ctx), {"request_id": request_id, "stream": message_id}
        )
    return None


async def answer_question(ctx, question: str, reply_to: dict | None = None) -> Reply | None:
    if not question.strip() and not (reply_to and (reply_to.get("text") or reply_to.get("media"))):
        return Reply(ephemeral=USAGE)
    image = next(
        (m["media_id"] for m in (reply_to or {}).get("media") or [] if m.get("kind") == "image"),
        None,
    )
    messages = prompts.question_messages(question, ASKER, reply_to, image)
    return await ask(ctx, messages)


# --- commands -----------------------------------------------------------------------------------


async def stop(ctx) -> Reply:
    active = await ctx.storage_get(ACTIVE, _active_key(ctx))
    if not active:
        return Reply(ephemeral="Nothing to stop: no answer of yours is being written here.")
    await ctx.storage_delete(ACTIVE, _active_key(ctx))
    try:
        await ctx.ai_cancel(active["request_id"])
    except HostError as exc:
        log.warning("cancel %s: %s", active["request_id"], exc)
    try:
        await ctx.stream_stop(active["stream"])
    except HostError as exc:  # already stopped (finished meanwhile): nothing to keep
        log.info("stop %s: %s", active["stream"], exc.code)
    return Reply(ephemeral="Stopped: the answer keeps what was written.")


async def summary(ctx) -> Reply | None:
    # What they missed: after where they had read when they opened the chat (their client says
    # so with the command: opening it marked it read), else after their read position now.
    since = ctx.catch_up_from
    try:
        if since is not None:
            history = await ctx.history(limit=prompts.SUMMARY_MESSAGES, after=since)
        else:
            history = await ctx.history(limit=prompts.SUMMARY_MESSAGES, since_read=True)
    except HostError as exc:
        if exc.code == "history_not_granted":
            return Reply(
                ephemeral="To catch you up I need to read this chat's history: a group admin can "
                "allow it in the chat's settings (Apps → Assistant → Read history), and take it "
                "back at any time."
            )
        raise
    missed = history.get("messages") or []
    if not missed:
        return Reply(ephemeral="You are all caught up: nothing new since you last read this chat.")
    messages = prompts.summary_messages(READER, missed)
    return await ask(ctx, messages, "summary", with_tools=False, stream=False)


async def translate(ctx, language: str, reply_to: dict | None) -> Reply | None:
    if not language:
        return Reply(ephemeral="Usage: reply to a message with /ai translate <language>")
    if not reply_to or not (reply_to.get("text") or "").strip():
        return Reply(
            ephemeral="Reply to the message you want translated with /ai translate <language>."
        )
    return await ask(
        ctx, prompts.translate_messages(language, reply_to["text"]), "translate", with_tools=False
    )


@app.command("ai")
async def ai_command(ctx) -> Reply | None:
    words = ctx.args
    reply_to = getattr(ctx, "reply_to", None)
    if not words and not reply_to:
        return Reply(ephemeral=USAGE)
    first = words[0].lower() if words else ""
    if first == "stop" and len(words) == 1:
        return await stop(ctx)
    if first == "summary" and len(words) == 1:
        return await summary(ctx)
    if first == "translate":
        return await translate(ctx, " ".join(words[1:]), reply_to)
    return await answer_question(ctx, ctx.text or " ".join(words), reply_to)


@app.event("message.received")
async def on_message(ctx) -> Reply | None:
    """An @mention, a reply to the assistant, or a message in its service chat (privacy mode:
    nothing else in a group ever reaches it)."""
    message = (ctx.payload or {}).get("message") or {}
    text = " ".join(
        w for w in (message.get("text") or "").split() if not w.lower().startswith("@assistant")
    )
    if text.lower().startswith("/ai"):
        return None  # the command itself
    reply_to = message.get("reply_to")
    first, _, rest = text.partition(" ")
    if first.lower() == "translate":
        return await translate(ctx, rest.strip(), reply_to)
    if first.lower() == "summary" and not rest.strip():
        return await summary(ctx)
    return await answer_question(ctx, text, reply_to)


# --- the model's answers ------------------------------------------------------------------------


async def _run_tools(ctx, run: dict[str, Any], calls: list[dict[str, Any]]) -> list[dict]:
    names = {name: tuple(target) for name, target in run["names"].items()}
    results = []
    for call in calls:
        resolved = tools.resolve_call(call, names)
        if isinstance(resolved, str):
            content = json.dumps({"error": resolved})
        else:
            app_id, tool, arguments = resolved
            try:
                answer = await ctx.call_tool(app_id, tool, arguments)
                content = json.dumps(answer.get("result"), ensure_ascii=False)[:TOOL_RESULT_MAX]
            except HostError as exc:
                content = json.dumps({"error": exc.code, "message": exc.message})
        results.append({"role": "tool", "tool_call_id": call.get("id") or "", "content": content})
    return results


async def _finish(ctx, run: dict[str, Any], text: str | None, failed: str | None = None) -> None:
    if run["stream"]:
        final = text if failed is None else (text or "") + f"\n\n({failed})"
        try:
            await ctx.stream_stop(run["stream"], final.strip() or None if final else None)
        except HostError as exc:
            log.info("stream %s already stopped (%s)", run["stream"], exc.code)
        key = f"{run['conversation_id']}:{run['user_id']}"
        active = await ctx.storage_get(ACTIVE, key)
        if active and active.get("stream") == run["stream"]:
            await ctx.storage_delete(ACTIVE, key)
        return
    body = text or failed or "No answer."
    card = Card("Catch-up" if run["kind"] == "summary" else "Assistant", text=body[:2000])
    if run["kind"] == "summary" and not failed:
        card.buttons.append(Button("summary.share", "Share in the chat"))
    ephemeral_id = await ctx.reply_ephemeral(card)
    if ephemeral_id:  # kept for Share (the ephemeral card's id is what the press names)
        shared = Card("Catch-up", text=body[:2000])
        await ctx.storage_put(SHARED, ephemeral_id, shared.to_dict())


@app.event("ai.completed")
async def on_completed(ctx) -> None:
    payload = ctx.payload or {}
    request_id = payload.get("request_id")
    run = await ctx.storage_get(RUNS, request_id) if request_id else None
    if run is None:
        return
    await ctx.storage_delete(RUNS, request_id)
    message = payload.get("message") or {}
    status = payload.get("status")
    if status == "cancelled":
        return  # /ai stop stopped the stream already
    if status != "completed":
        error = (payload.get("error") or {}).get("message") or "the model did not answer"
        await _finish(ctx, run, None, f"The assistant could not finish: {error}")
        return
    calls = message.get("tool_calls") or []
    if calls and run["rounds"] < MAX_ROUNDS:
        run["messages"].append(
            {"role": "assistant", "content": message.get("content") or "", "tool_calls": calls}
        )
        run["messages"].extend(await _run_tools(ctx, run, calls))
        run["rounds"] += 1
        try:
            next_id = await ctx.ai_chat(
                run["messages"], tools=run["functions"] or None, stream_to=run["stream"]
            )
        except HostError as exc:
            await _finish(ctx, run, None, _refusal(exc))
            return
        await ctx.storage_put(RUNS, next_id, run)
        if run["stream"]:
            key = f"{run['conversation_id']}:{run['user_id']}"
            await ctx.storage_put(ACTIVE, key, {"request_id": next_id, "stream": run["stream"]})
        return
    await _finish(ctx, run, None if run["stream"] else message.get("content"))


@app.action("summary.share")
async def share_summary(ctx) -> Reply | None:
    card = await ctx.storage_get(SHARED, ctx.message_id or "")
    if card is None:
        return Reply(ephemeral="That catch-up is no longer available.")
    await ctx.send_card(card)
    return None
