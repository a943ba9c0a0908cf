"""An app's checked ``ai.chat`` (``sdk._capability_services.check_ai_chat``) made into the
request the model server gets: OpenAI's chat-completions body.

Messages keep their roles and texts; an assistant's tool calls become OpenAI's ``{id, type:
"function", function: {name, arguments}}``; tools become ``{type: "function", function}``.
An image part names a media (``media_id``) the app may show the model — an image shared in this
conversation, or one the app uploaded itself — and is sent as a ``data:`` URL of the stored
(verified, metadata-stripped) bytes, since the model server cannot reach the platform's media
URLs. The bytes are read in the background task, not while the app's call waits.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from messaging.actions.cards import bot_id
from sdk.errors import InvalidParams, NotFound

if TYPE_CHECKING:
    from messaging.context import Messaging
    from miniapps.host.calls import Call

IMAGE_MAX_BYTES = 10 * 1024 * 1024  # one image sent to the model (a photo after our pipeline)


async def check_images(
    messaging: Messaging, call: Call, image_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """The media documents of ``image_ids``, each an image the app may send: shared in the
    call's conversation, or uploaded by the app. ``NotFound`` for any other (a media of
    another chat, another app's, a file, or none: the app learns nothing of those),
    ``InvalidParams`` for one too large to send."""
    docs: dict[str, dict[str, Any]] = {}
    for media_id in dict.fromkeys(image_ids):
        doc = await messaging.media.get_media(media_id)
        allowed = doc is not None and doc.get("kind") == "image"
        if allowed and not (
            doc.get("app_id") == call.app_id and doc.get("owner_id") == bot_id(call.app_id)
        ):
            shared_in = await messaging.media_refs.get_conversation_ids(media_id)
            allowed = call.conversation_id in shared_in
        if not allowed:
            raise NotFound(
                f"no image {media_id} in this conversation or uploaded by this app (media.upload)"
            )
        if int(doc.get("size") or 0) > IMAGE_MAX_BYTES:
            raise InvalidParams(
                f"image {media_id} is larger than the {IMAGE_MAX_BYTES} bytes a model is sent"
            )
        docs[media_id] = doc
    return docs


async def data_urls(messaging: Messaging, docs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each image as a ``data:<type>;base64,…`` URL, by media id."""
    urls = {}
    for media_id, doc in docs.items():
        chunks = messaging.blobs.read(doc["blob"], 0, doc["size"])
        data = b"".join([chunk async for chunk in chunks])
        encoded = base64.b64encode(data).decode("ascii")
        urls[media_id] = f"data:{doc['content_type']};base64,{encoded}"
    return urls


def _content(content: Any, urls: dict[str, str]) -> Any:
    if not isinstance(content, list):
        return content
    parts = []
    for part in content:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]})
        else:
            parts.append({"type": "image_url", "image_url": {"url": urls[part["media_id"]]}})
    return parts


def _message(message: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message["role"], "content": _content(message["content"], urls)}
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            for call in message["tool_calls"]
        ]
    if message["role"] == "tool":
        out["tool_call_id"] = message["tool_call_id"]
    return out


def build_body(model: str, request: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
    """The chat-completions body of a checked request (``stream`` is the client's)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message(message, urls) for message in request["messages"]],
        # max_tokens, not max_completion_tokens: what every OpenAI-compatible server reads.
        "max_tokens": request["max_tokens"],
    }
    if request.get("temperature") is not None:
        body["temperature"] = request["temperature"]
    if request.get("tools"):
        body["tools"] = [{"type": "function", "function": tool} for tool in request["tools"]]
    return body
