"""The streaming test app (tests/miniapps/test_streams_e2e.py, test_streams_simulator.py,
tests/web/test_stream_browser.py): ``/stream`` drives ``messages.stream_*``; every answer is an
ephemeral text to the invoker, ``streamer: <what>``, and a refusal ``streamer: error <code>``.

- ``/stream start [text…]`` → ``streamer: started <message id>``
- ``/stream append <id> <text…>`` adds the text (``\\n`` for a new line)
- ``/stream burst <id> <count> <gap ms> <piece>`` adds ``<piece><i> `` ``count`` times, a gap
  apart, within the invocation (appends coming quickly: the host throttles what members get)
- ``/stream stop <id> [text…]`` → ``streamer: stopped <final text>``
- ``/stream whole <count> <gap ms> <piece>``: start, burst and stop in one go."""

import asyncio

from sdk import App, HostError

app = App("streamer")
TEXT_MAX = 4000  # an ephemeral text's limit: a long final text is shown cut


def pieces(count: int, piece: str) -> list[str]:
    return [f"{piece}{i} " for i in range(count)]


async def burst(ctx, message_id: str, count: int, gap_ms: int, piece: str) -> None:
    for text in pieces(count, piece):
        await ctx.stream_append(message_id, text)
        await asyncio.sleep(gap_ms / 1000)


@app.command("stream")
async def stream(ctx):
    action, *rest = ctx.args or ["start"]
    try:
        if action == "start":
            message_id = await ctx.stream_start(" ".join(rest))
            answer = f"started {message_id}"
        elif action == "append":
            await ctx.stream_append(rest[0], " ".join(rest[1:]).replace("\\n", "\n"))
            answer = "appended"
        elif action == "burst":
            await burst(ctx, rest[0], int(rest[1]), int(rest[2]), rest[3])
            answer = "burst done"
        elif action == "stop":
            final = await ctx.stream_stop(rest[0], " ".join(rest[1:]) if rest[1:] else None)
            answer = f"stopped {final}"
        elif action == "whole":
            message_id = await ctx.stream_start()
            await burst(ctx, message_id, int(rest[0]), int(rest[1]), rest[2])
            answer = f"stopped {await ctx.stream_stop(message_id)}"
        else:
            answer = f"unknown action {action}"
    except HostError as exc:
        answer = f"error {exc.code}"
    await ctx.reply_ephemeral(f"streamer: {answer}"[:TEXT_MAX])
