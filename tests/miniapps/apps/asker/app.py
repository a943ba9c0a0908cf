"""The ``ai`` test app: each command asks the platform's model (``ctx.ai_chat``) and answers the
request id at once ("asked <id>", or "streaming <id> into <message id>"); what the model said
arrives later as ``ai.completed``, posted into the chat as one line the tests read::

    ai <status>: <content> | tools=<tool calls JSON> | error=<code> | signed=<bool> | stream=<id>

``/tools`` gives the model a ``weather`` tool: when it asks for it, the app answers it ("sunny in
<city>") and asks again with the result (a tool round); ``/look`` uploads a small photo and asks
about it; ``/cancel <id>`` cancels a request; ``/stop <id>`` stops a streaming message (which
cancels an answer running into it). A refused ``ai.chat`` is shown to the invoker only:
"refused <code>: <message>"."""

import json
import struct
import zlib

from sdk import App, Reply
from sdk.errors import HostError, InvalidSignature

app = App("asker")
WEATHER = {
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    rows = b"".join(b"\x00" + bytes((200, 30, 60)) * 4 for _ in range(3))
    header = struct.pack(">IIBBBBB", 4, 3, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def _ask(ctx, messages, **options):
    try:
        request_id = await ctx.ai_chat(messages, **options)
    except HostError as exc:
        return None, Reply(ephemeral=f"refused {exc.code}: {exc.message}")
    await ctx.storage_put("asks", request_id, {"messages": messages, "tools": "tools" in options})
    return request_id, None


@app.command("ask")
async def ask(ctx):
    request_id, refused = await _ask(ctx, [{"role": "user", "content": ctx.text or "hi"}])
    return refused or Reply(text=f"asked {request_id}")


@app.command("stream")
async def stream(ctx):
    message_id = await ctx.stream_start()
    messages = [{"role": "user", "content": ctx.text or "hi"}]
    request_id, refused = await _ask(ctx, messages, stream_to=message_id)
    if refused:
        await ctx.stream_stop(message_id, "(refused)")
        return refused
    return Reply(text=f"streaming {request_id} into {message_id}")


@app.command("tools")
async def tools(ctx):
    messages = [{"role": "user", "content": ctx.text or "weather?"}]
    request_id, refused = await _ask(ctx, messages, tools=[WEATHER])
    return refused or Reply(text=f"asked {request_id}")


@app.command("look")
async def look(ctx):
    media_id = await ctx.upload_media(_png(), "image/png", name="dot.png")
    content = [{"type": "text", "text": ctx.text or "what is this?"}]
    content.append({"type": "image", "media_id": media_id})
    request_id, refused = await _ask(ctx, [{"role": "user", "content": content}])
    return refused or Reply(text=f"asked {request_id}")


@app.command("cancel")
async def cancel(ctx):
    return Reply(text=f"cancel {ctx.args[0]}: {await ctx.ai_cancel(ctx.args[0])}")


@app.command("stop")
async def stop(ctx):
    return Reply(text=f"stopped: {await ctx.stream_stop(ctx.args[0])}")


@app.event("ai.completed")
async def completed(ctx):
    try:
        done = ctx.verify_host_event()
        signed = True
    except InvalidSignature:
        done, signed = ctx.payload, False
    message = done["message"]
    asked = await ctx.storage_get("asks", done["request_id"]) or {}
    if done["status"] == "completed" and message["tool_calls"] and asked.get("tools"):
        results = [
            {
                "role": "tool",
                "tool_call_id": call["id"],
                "content": f"sunny in {json.loads(call['arguments']).get('city', '?')}",
            }
            for call in message["tool_calls"]
        ]
        messages = [*asked["messages"], message, *results]
        request_id, _ = await _ask(ctx, messages, tools=[WEATHER])
        await ctx.send_text(f"tool round: asked {request_id}" if request_id else "tool refused")
        return
    tools_json = json.dumps(message["tool_calls"], separators=(",", ":"))
    code = (done.get("error") or {}).get("code")
    await ctx.send_text(
        f"ai {done['status']}: {message['content']} | tools={tools_json} | error={code} | "
        f"signed={signed} | stream={done['stream_to']}"
    )
