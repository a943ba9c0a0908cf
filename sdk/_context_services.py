"""``Context`` methods for services: service messages, calls, timers, versioned storage and
money beyond a simple payment (holds, payouts, transfer requests). A mixin of ``sdk.app.Context``,
kept apart only to keep each file short; use them through ``ctx``."""

from __future__ import annotations

import datetime
import os
from collections.abc import Awaitable, Callable
from typing import Any

from sdk.cards import Card, as_dict
from sdk.errors import InvalidParams, InvalidSignature, SDKError
from sdk.signing import APP_SECRET_ENV, verify_event


class ServiceCalls:
    """The capabilities services need (issue 14), each a thin ``self.call``."""

    # ``Context.call``: one capability call bound to this invocation's call id.
    call: Callable[..., Awaitable[dict[str, Any]]]

    async def send_service_message(
        self, user_id: str, text: str | None = None, card: Card | dict | None = None
    ) -> None:
        """Send a service message — a ``text`` or a ``card``, exactly one — to a user of this
        app (``user_id``: a per-app id) who opted in to its notifications: it lands in their
        service chat with the app, whose card buttons reach this app's ``@app.action``
        handlers like any card's (``notifications.send``). Raises ``ScopeDenied`` (not opted
        in: ask with ``request_subscription``), ``NotFound``, ``InvalidParams``."""
        params: dict[str, Any] = {"user_id": user_id}
        if text is not None:
            params["text"] = text
        if card is not None:
            params["card"] = as_dict(card)
        await self.call("notifications.send", **params)

    async def request_subscription(self) -> str:
        """Ask the invoking user (the host shows a consent sheet) whether this app may send
        them service messages (``notifications.request_subscription``; only from a user's
        command or press). Returns ``"granted"`` (already), ``"declined"`` (they said no
        before: not asked again) or ``"asked"``; the answer arrives later as the event
        ``subscription.granted`` or ``subscription.declined`` (``payload["user_id"]``),
        declared in the manifest's ``events.accepts``."""
        result = await self.call("notifications.request_subscription")
        return result["status"]

    async def start_call(
        self,
        media: str = "video",
        *,
        conversation_id: str | None = None,
        participant_ids: list[str] | None = None,
        title: str | None = None,
        own_chat: bool = False,
    ) -> str:
        """Start a voice (``"audio"``) or ``"video"`` call with this app as its origin
        (``calls.start``): in this conversation, or ``conversation_id`` (one that has this
        app); ringing ``participant_ids`` (per-app ids of members; default every member).
        Nobody is put in the call: each person joins by answering. Returns the call id; the
        app then gets ``call.started`` (``payload["user_id"]`` joined first) and
        ``call.ended`` (``outcome``, ``duration_seconds``) events when the manifest's
        ``events.accepts`` lists them; both carry the call's ``conversation_id``.

        ``own_chat=True`` calls people who share no conversation (a doctor and a patient)::

            await ctx.start_call("video", participant_ids=[ctx.user_id, doctor_id],
                                 own_chat=True, title="Dr. Lee, 10:30")

        The host opens a group of exactly ``participant_ids`` (2 or more, the invoking user
        among them; no ``conversation_id``) created by this app, titled ``title`` or the app's
        name, with this app in it, and rings them all there; the same people get the same
        chat again next time.

        Raises ``HostError`` with code ``not_a_member``, ``nobody_to_call``, ``user_busy``
        (everyone is in another call) or ``call_in_progress`` (the chat has a call); with
        ``own_chat``, ``invoker_not_included``, ``unknown_participant`` (a per-app id this
        app does not know) or ``blocked`` (one participant blocked another); or
        ``InvalidParams``."""
        params: dict[str, Any] = {"media": media}
        if conversation_id is not None:
            params["conversation_id"] = conversation_id
        if participant_ids is not None:
            params["participant_ids"] = list(participant_ids)
        if title is not None:
            params["title"] = title
        if own_chat:
            params["own_chat"] = True
        result = await self.call("calls.start", **params)
        return result["call_id"]

    async def schedule(
        self,
        name: str,
        *,
        at: int | datetime.datetime | None = None,
        delay: float | datetime.timedelta | None = None,
        payload: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """Have the timer ``name`` (declared in the manifest's ``timers``, handled by
        ``@app.timer(name)``) fire once, at ``at`` (epoch milliseconds, or an aware
        ``datetime``) or after ``delay`` (seconds, or a ``timedelta``) — exactly one of them —
        with ``payload`` (a JSON object of at most 16 KiB) as ``ctx.payload``
        (``timers.schedule``). Returns ``{"key", "due_at"}``::

            await ctx.schedule("remind", delay=timedelta(days=1), key=f"remind:{order_id}",
                               payload={"order_id": order_id})

        The timer is durable (it survives restarts) and fires at or after its time, in this
        conversation and on behalf of this user; late after an outage, never early. ``key``
        (1-64 characters of ``[A-Za-z0-9_.:-]``; default a new one) makes it idempotent:
        scheduling the same key again moves that timer (new time, payload, name) instead of
        adding one. A firing whose handler failed is tried again (``ctx.attempt`` > 1), so
        make the handler's effects idempotent by ``ctx.timer_key``/``ctx.due_at``.

        Raises ``HostError`` with ``.code`` ``unknown_timer`` (name not declared),
        ``invalid_time`` (past, or more than 366 days ahead), ``too_many_timers`` (10,000
        pending per app), ``InvalidParams``, ``PermissionDenied``.
        """
        params: dict[str, Any] = {"name": name}
        if isinstance(at, datetime.datetime):
            if at.tzinfo is None:
                raise InvalidParams("at: give an aware datetime (with a timezone)")
            at = round(at.timestamp() * 1000)
        if at is not None:
            params["at"] = at
        if isinstance(delay, datetime.timedelta):
            delay = delay.total_seconds()
        if delay is not None:
            params["delay_ms"] = round(delay * 1000) if isinstance(delay, float) else delay * 1000
        if payload is not None:
            params["payload"] = payload
        if key is not None:
            params["key"] = key
        return await self.call("timers.schedule", **params)

    async def cancel_schedule(self, key: str) -> bool:
        """Cancel this app's pending timer ``key`` (``timers.cancel``); False when none was
        pending (it fired already, was cancelled, or never existed)."""
        return (await self.call("timers.cancel", key=key))["cancelled"]

    # --- holds and payouts (service money) --------------------------------------------------

    async def authorize_payment(
        self, amount: int, currency: str, description: str, order_ref: str
    ) -> dict[str, Any]:
        """Like ``request_payment`` but the money is only *held* (``payments.request`` with
        ``capture: false``) — for group buys and bookings that may fall through; returns
        ``{"payment_id", "status"}``.

        Once the user confirms, the app gets a signed ``payment.authorized`` event (its
        ``hold_expires_at``: HOLD_EXPIRY, 7 days by default); then call ``capture_payment``
        (take some or all of it) or ``void_payment`` (give it all back). A hold neither
        captured nor voided by its expiry is voided by the host (``payment.voided``,
        ``reason: "expired"``). Errors as ``request_payment``; the same ``order_ref`` with
        ``request_payment`` is ``OrderRefReused``.
        """
        return await self.call(
            "payments.request",
            amount=amount,
            currency=currency,
            description=description,
            order_ref=order_ref,
            capture=False,
        )

    async def capture_payment(self, payment_id: str, amount: int | None = None) -> dict[str, Any]:
        """Take ``amount`` minor units (default: all) of an authorized hold of this app
        (``payments.capture``); the rest goes back to the user at once. Returns
        ``{"payment_id", "status": "paid", "captured", "fee", "released"}``: ``fee`` is the
        platform's (set per app by an admin; the merchant balance gets ``captured - fee``).

        Once per hold: a retry with the same amount returns the same answer; after that the
        payment is ``paid`` and refundable up to ``captured`` (``refund_payment``). The app
        also gets a signed ``payment.captured`` event. Raises ``HostError`` with code
        ``not_found`` (not this app's payment), ``not_authorized`` (not an authorized hold:
        pending, voided, captured for another amount, or a plain payment),
        ``capture_exceeds_hold``, ``amount_too_large``, ``payment_in_progress`` (retry).
        """
        params: dict[str, Any] = {"payment_id": payment_id}
        if amount is not None:
            params["amount"] = amount
        return await self.call("payments.capture", **params)

    async def void_payment(self, payment_id: str) -> dict[str, Any]:
        """Give an authorized hold of this app back to the user in full (``payments.void``);
        returns ``{"payment_id", "status": "voided", "released"}`` (again: the same answer).
        The app also gets a signed ``payment.voided`` event (``reason: "voided"``). Raises
        ``HostError`` with code ``not_found``, ``not_authorized`` (captured, or not a hold),
        ``payment_in_progress``.
        """
        return await self.call("payments.void", payment_id=payment_id)

    async def payout(
        self, user_id: str, amount: int, currency: str, payout_ref: str
    ) -> dict[str, Any]:
        """Pay ``amount`` minor units of ``currency`` from this app's merchant balance (what
        its payments brought in) to the user with per-app id ``user_id`` (``payments.payout``)
        — marketplace sellers, prizes. Returns ``{"payout_id", "status": "sent", "amount",
        "fee", "currency"}``; the user receives ``amount - fee``.

        ``payout_ref`` (1-64 characters of ``[A-Za-z0-9_.:-]``) makes it idempotent: the same
        ref pays once and answers the same payout. Never beyond the merchant balance: raises
        ``HostError`` with code ``insufficient_merchant_funds`` (nothing moved; that ref stays
        refused, pay again with a new one), ``not_found`` (a user this app never saw),
        ``payout_ref_reused`` (the ref named another payout), ``amount_too_large``,
        ``unknown_currency``, ``payout_in_progress`` (retry).
        """
        return await self.call(
            "payments.payout",
            user_id=user_id,
            amount=amount,
            currency=currency,
            payout_ref=payout_ref,
        )

    async def storage_get_versioned(self, collection: str, key: str) -> tuple[Any, int]:
        """``(value, version)`` of ``key`` in ``collection`` (``storage.get``): ``(None, 0)``
        when none. Pass the version to ``storage_update(expected_version=...)``."""
        result = await self.call("storage.get", collection=collection, key=key)
        return result.get("value"), int(result.get("version", 0))

    async def storage_update(
        self,
        collection: str,
        key: str,
        set: dict[str, Any] | None = None,
        unset: list[str] | None = None,
        *,
        expected_version: int | None = None,
        upsert: bool = False,
    ) -> int:
        """Change top-level fields of the object under ``key`` (``storage.update``) and return
        its new version. With ``expected_version``, only if the document is still at that
        version (``Conflict`` otherwise: read it again and retry); ``NotFound`` when there is
        no document unless ``upsert``; ``HostError`` ``duplicate_value`` when a ``unique``
        field (manifest ``storage.indexes``) would repeat another document's value."""
        result = await self.call(
            "storage.update",
            collection=collection,
            key=key,
            set=set,
            unset=unset,
            expected_version=expected_version,
            upsert=upsert,
        )
        return int(result["version"])

    async def storage_incr(
        self,
        collection: str,
        key: str,
        field: str,
        delta: int,
        *,
        min: int = 0,
        max: int | None = None,
    ) -> int:
        """Add ``delta`` to the integer ``field`` of the object under ``key`` atomically
        (``storage.incr``; the document and field are created at 0 when absent) and return
        the new value — only if it stays within [``min``, ``max``], else ``HostError``
        ``limit_reached`` and nothing changes: a stock or a seat count never goes below
        ``min``, whatever the concurrency."""
        result = await self.call(
            "storage.incr",
            collection=collection,
            key=key,
            field=field,
            delta=delta,
            min=min,
            max=max,
        )
        return int(result["value"])

    async def storage_page(
        self,
        collection: str,
        filter: dict[str, Any] | None = None,
        *,
        sort: str | None = None,
        order: str = "asc",
        after: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """A page of ``storage.find``: ``{"items": [{"key", "value", "version"}], "next"}``,
        sorted by ``sort`` (a field the manifest declares in ``storage.indexes``) then key, or
        by key; ``next`` is the cursor to pass as ``after`` for the following page (None: no
        more)."""
        return await self.call(
            "storage.find",
            collection=collection,
            filter=filter or {},
            limit=limit,
            sort={"field": sort, "order": order} if sort else None,
            after=after,
        )

    async def request_transfer(
        self,
        from_user_id: str,
        to_user_id: str,
        amount: int,
        currency: str,
        transfer_ref: str,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Ask the user ``from_user_id`` to pay ``amount`` minor units of ``currency`` to the
        user ``to_user_id`` (per-app ids of people who used this app) — e.g. their share of a
        bill (``payments.request_transfer``); returns ``{"payment_id", "status"}``.

        The payer is asked on a sheet like a payment (with ``note``, at most 200 characters)
        and the money goes person to person; the app never holds it. The outcome arrives as
        a signed ``transfer_request.paid``, ``.declined`` or ``.expired`` event (payload:
        ``user_id`` the payer, ``to_user_id``, ``transfer_ref``, ``amount``; check it with
        ``ctx.verify_payment_event()``). ``transfer_ref`` makes it idempotent like
        ``order_ref`` (and shares its namespace). Raises ``HostError`` with code
        ``not_found`` (a user this app never saw), ``same_user``, ``transfer_ref_reused``,
        ``amount_too_large``, ``unknown_currency``.
        """
        params: dict[str, Any] = {
            "from_user_id": from_user_id,
            "to_user_id": to_user_id,
            "amount": amount,
            "currency": currency,
            "transfer_ref": transfer_ref,
        }
        if note is not None:
            params["note"] = note
        return await self.call("payments.request_transfer", **params)

    async def media_url(self, media_id: str, *, thumbnail: bool = False) -> str:
        """A freshly signed address of a media this app uploaded (``media.url``), for its web
        view to show — ``<img src>`` of a photo from ``upload_media``::

            @app.view("product")
            async def product(ctx):
                photo = await ctx.storage_get("photos", "mug")
                return {"photo_url": await ctx.media_url(photo)}

        The URL is relative to the platform (``/media/<id>?exp=…&sig=…``), so a hosted page
        loads it under its CSP (``img-src 'self'``) and anyone holding it may fetch the bytes
        until it expires (the host's ``MEDIA_URL_TTL``, an hour by default; ``expires_at``,
        epoch ms, is in ``ctx.call("media.url", media_id=…)``'s answer): ask for a new one per
        page rather than storing it. ``thumbnail=True``: the image's 320 px WebP thumbnail (a
        media without one: the original). Raises ``NotFound`` for an id this app did not
        upload (a user's media, another app's, or none), ``PermissionDenied`` without
        ``media.url`` in the manifest. In the simulator the address is a fake
        ``/sim/media/<id>?…``; ``sim.fetch_media_url(url)`` answers it."""
        params: dict[str, Any] = {"media_id": media_id}
        if thumbnail:
            params["thumbnail"] = True
        return (await self.call("media.url", **params))["url"]

    async def issue_credential(
        self,
        subject_user_id: str,
        achievement: dict[str, Any],
        evidence: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Issue a verifiable credential — an Open Badges 3.0 ``OpenBadgeCredential`` — to a
        user of this app (``credentials.issue``), e.g. a certificate for a finished course::

            badge = await ctx.issue_credential(
                ctx.user_id,
                {"id": "python-101", "name": "Python 101",
                 "description": "Finished the Python 101 course", "criteria": "Pass every quiz"},
            )
            await ctx.send_text(f"Your certificate: {badge['url']}")

        ``subject_user_id`` is a per-app id of someone who used this app; ``achievement``:
        ``name`` (1-200 characters) and ``description`` (1-2000), optionally ``id`` (yours,
        1-200: the same id names the same achievement in every credential of it),
        ``criteria`` (how it is earned) and ``image`` (a media id of an image this app
        uploaded); ``evidence``: 1-10 ``{id?, name?, description?, narrative?}``. The host
        builds and signs the credential (EdDSA JWS, the platform's Ed25519 key) and returns
        ``{"credential_id", "url", "jwt"}``: anyone verifies it at ``url``
        (``GET /credentials/<id>``) or by posting the ``jwt`` to
        ``/api/v1/credentials/verify``. The credential names the earner by their per-app id
        only. Raises ``NotFound`` (a user this app never saw, an image it did not upload),
        ``InvalidParams``, ``PermissionDenied`` without ``credentials.issue`` in the
        manifest."""
        params: dict[str, Any] = {"subject_user_id": subject_user_id, "achievement": achievement}
        if evidence is not None:
            params["evidence"] = evidence
        return await self.call("credentials.issue", **params)

    async def revoke_credential(self, credential_id: str, reason: str) -> dict[str, Any]:
        """Revoke a credential this app issued (``credentials.revoke``); its public
        verification then says ``revoked`` with ``reason`` (1-500 characters). Revoking it
        again changes nothing (the first reason stays). Returns ``{"revoked": True}``; raises
        ``NotFound`` for a credential this app did not issue (another app's included)."""
        return await self.call("credentials.revoke", credential_id=credential_id, reason=reason)

    async def webhook_url(self, name: str) -> str:
        """The address to give a provider (Duffel, Stripe, GitHub …) for this app's webhook
        ``name`` (declared in the manifest's ``webhooks``; ``webhooks.url``), bound to this
        conversation and this user::

            url = await ctx.webhook_url("duffel")   # https://chat.example.com/api/v1/hooks/…
            await ctx.fetch(DUFFEL_WEBHOOKS, method="POST", body=json.dumps({"url": url}))

        Each POST to it reaches ``@app.event("webhook.received")`` in this conversation, as
        this user, with ``ctx.payload`` ``{name, body (the raw text), headers (content-type,
        user-agent, x-…, …-signature; lower-cased), received_at (epoch ms), signature}``. The
        sender gets 200 once the handler returned and 502 when it raised or timed out, and
        retries: deliveries are at least once, so handle each one idempotently (by the
        provider's event id), and check the provider's signature header before trusting the
        body — anyone who has the URL can post to it.

        The URL is signed by the host and stateless: the same name, conversation and user give
        the same URL, which never expires; it answers 410 once the app is removed from this
        chat or no longer declares ``name``. Raises ``HostError`` ``unknown_webhook`` (not
        declared), ``PermissionDenied`` (no ``webhooks.url`` in the manifest),
        ``InvalidParams``."""
        return (await self.call("webhooks.url", name=name))["url"]

    # --- streaming messages (issue 20) ----------------------------------------------------

    async def stream_start(self, text: str = "") -> str:
        """Post a text from this app's bot that is still being written
        (``messages.stream_start``): members see it at once, marked ``streaming``, with
        ``text`` (may be empty: a "thinking…" bubble). Returns its message id; grow it with
        ``stream_append`` and end it with ``stream_stop``::

            message_id = await ctx.stream_start()
            for piece in ("Lisbon ", "is sunny ", "today."):
                await ctx.stream_append(message_id, piece)
            await ctx.stream_stop(message_id)

        Or hand it to the model: ``await ctx.ai_chat(messages, stream_to=message_id)`` writes
        the answer into it as it comes. A stream left unwritten for 10 minutes is stopped by
        the host. Raises ``HostError`` ``text_too_long`` (over 32768 characters)."""
        return (await self.call("messages.stream_start", text=text))["message_id"]

    async def stream_append(self, message_id: str, text: str) -> None:
        """Add ``text`` to a streaming message this app started in this conversation
        (``messages.stream_append``). The host buffers what you add and sends members the
        whole text so far at most once every 300 ms (never the same text twice), so append
        as often as pieces come. Raises ``NotFound`` (not this app's stream here),
        ``HostError`` ``not_streaming`` (stopped: by you, by the host after 10 idle minutes,
        or recalled by an admin) or ``text_too_long`` (the whole text would pass 32768
        characters; nothing is added)."""
        await self.call("messages.stream_append", message_id=message_id, text=text)

    async def stream_stop(self, message_id: str, text: str | None = None) -> str:
        """End a streaming message (``messages.stream_stop``) with its final ``text`` (None:
        what was streamed). Members always get the final message (``message.updated``,
        ``streaming: false``); history, sync and search hold that text only. An ``ai.chat``
        still streaming into it is cancelled. Returns the final text. Raises ``NotFound``,
        ``HostError`` ``not_streaming`` (stopped already) or ``text_too_long``."""
        params: dict[str, Any] = {"message_id": message_id}
        if text is not None:
            params["text"] = text
        return (await self.call("messages.stream_stop", **params))["text"]

    # --- privacy mode: chat history and other apps' tools (issue 20) ----------------------

    async def history(
        self,
        limit: int = 50,
        *,
        before: int | None = None,
        since_read: bool = False,
        after: int | None = None,
    ) -> dict[str, Any]:
        """The conversation's messages, oldest first (``messages.history``) — only once a
        group admin granted this app ``messages.read_history`` in this chat (in a direct chat
        either person, in a service chat its person: ``PUT /api/v1/conversations/{id}/apps/
        {app_id}/grants/messages.read_history``). Returns ``{"messages": [{"id", "text",
        "sender", "sender_name", "at"}], "from_seq", "to_seq", "has_more"}``: the newest
        ``limit`` (1-200) messages, before the seq ``before`` when given; with
        ``since_read=True`` only those the invoking user has not read yet (what *they*
        missed), the newest ``limit`` of them — ``has_more`` says older ones were left out; with
        ``after`` (a seq) only those after it — a command's ``ctx.catch_up_from`` is where its
        person had read up to when they opened the chat, which ``since_read`` no longer knows
        once the chat is open and read::

            after = ctx.catch_up_from
            if after is not None:
                missed = await ctx.history(limit=100, after=after)
            else:
                missed = await ctx.history(limit=100, since_read=True)
            lines = [f"{m['sender_name']}: {m['text']}" for m in missed["messages"]]

        ``sender`` is a per-app user id (``app:<id>`` for an app's bot), ``at`` epoch ms.
        Only what the invoking user can see: nothing from before they joined, nothing recalled
        or deleted for them. Raises ``HostError`` ``history_not_granted`` (the message says
        how to grant it), ``PermissionDenied`` (no ``messages.history`` in the manifest)."""
        params: dict[str, Any] = {"limit": limit, "since_read": since_read}
        if before is not None:
            params["before"] = before
        if after is not None:
            params["after"] = after
        return await self.call("messages.history", **params)

    async def app_tools(self) -> list[dict[str, Any]]:
        """The read-only tools of the other apps this conversation has (``apps.tools``):
        ``[{"app_id", "name", "description", "parameters"}]``, ``parameters`` a JSON Schema
        — what a model's function list needs."""
        return (await self.call("apps.tools"))["tools"]

    async def call_tool(
        self, app_id: str, name: str, arguments: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Call another app's read-only tool as this user in this conversation
        (``apps.call_tool``) → ``{"result", "message_id"}``. ``arguments`` must satisfy the
        tool's ``parameters`` (``InvalidParams`` otherwise: a model's mistake to feed back to
        it). When the tool answered a card, the host posted it in the chat as *that* app's
        card and ``message_id`` is its id (else None): its buttons reach that app, and only a
        person's tap does anything — so a model's output never buys, books or pays.

        The tool has its own 3 s and may only read. Raises ``HostError`` ``unknown_tool``,
        ``app_not_installed`` (not an app of this chat), ``tool_failed`` (it raised, timed
        out or answered badly), ``RateLimited`` (called too deep from a user's action)."""
        return await self.call(
            "apps.call_tool", app_id=app_id, name=name, arguments=arguments or {}
        )

    # --- the platform's model (issue 20) --------------------------------------------------

    async def ai_chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stream_to: str | None = None,
    ) -> str:
        """Ask the platform's model for the next message of ``messages`` (``ai.chat``) and
        return the request's id at once: a model answer takes longer than a handler may (3 s),
        so it runs in the background and arrives as the event ``ai.completed`` (declare it in
        the manifest's ``events.accepts``; check it with ``ctx.verify_host_event()``)::

            @app.command("ask")
            async def ask(ctx):
                message_id = await ctx.stream_start()
                await ctx.ai_chat([{"role": "user", "content": ctx.text}], stream_to=message_id)

            @app.event("ai.completed")
            async def answered(ctx):
                done = ctx.verify_host_event()   # {request_id, status, message, usage, …}
                await ctx.stream_stop(done["stream_to"])

        ``messages``: 1-100 OpenAI chat messages ``{"role": "system"|"user"|"assistant"|
        "tool", "content": text (32 KiB at most) or parts}``; a user message's parts may hold
        images ``{"type": "image", "media_id": …}`` (a photo of this conversation, or one this
        app uploaded: sent to the model when the server's model takes images, else
        ``HostError`` ``vision_unsupported``); an assistant's ``tool_calls``
        ``[{"id", "name", "arguments"}]`` (as ``ai.completed`` gives them) and a ``"tool"``
        message's ``tool_call_id`` carry a tool round. ``tools``: at most 32 functions
        ``{"name", "description", "parameters"}`` (JSON Schema) the model may call — it never
        calls them itself: ``ai.completed``'s ``message.tool_calls`` says what it wants, your
        handler runs them (e.g. ``ctx.call_tool``) and asks again with their results.
        ``max_tokens`` 1-4096 (default 1024), ``temperature`` 0-2. ``stream_to``: a message of
        this app still streaming here (``stream_start``): the answer's text grows in it as it
        comes; it stays streaming after the answer (stop it, or continue it with the next
        ``ai_chat`` after a tool round).

        The event's ``payload``: ``{"request_id", "status": "completed"|"cancelled"|
        "failed", "message": {"role": "assistant", "content", "tool_calls"}, "finish_reason",
        "usage": {"prompt_tokens", "completion_tokens"}, "error": {"code", "message"} (failed:
        model_rate_limited, model_error, model_unreachable, model_timeout, model_refused,
        host_stopped), "stream_to", "timing": {"first_token_ms", "total_ms"}}``.

        Raises ``HostError`` with code ``ai_not_configured`` (the server has no model: the
        message says how to set one), ``ai_quota_exceeded`` (a token budget — this app's per
        day, this conversation's per day, the user's per hour — is used up: the message says
        which and when it resets), ``vision_unsupported``, ``not_found`` (an image this app may
        not send), ``stream_not_found``, ``too_many_requests`` (4 answers of this app already
        running in this conversation); ``InvalidParams`` naming the field at fault."""
        params: dict[str, Any] = {"messages": messages}
        if tools is not None:
            params["tools"] = tools
        if max_tokens is not None:
            params["max_tokens"] = max_tokens
        if temperature is not None:
            params["temperature"] = temperature
        if stream_to is not None:
            params["stream_to"] = stream_to
        return (await self.call("ai.chat", **params))["request_id"]

    async def ai_cancel(self, request_id: str) -> bool:
        """Stop one of this app's running ``ai_chat`` requests (``ai.cancel``), whichever
        server node runs it. True when it was running: its ``ai.completed`` then comes with
        ``status: "cancelled"`` and the text written so far, and its ``stream_to`` message is
        stopped keeping that text. False when it had ended already or is not this app's.
        (Stopping the ``stream_to`` message with ``stream_stop`` cancels it too.)"""
        return (await self.call("ai.cancel", request_id=request_id))["cancelled"]

    def verify_host_event(self, secret: str | None = None) -> dict[str, Any]:
        """The payload of this host event (``ai.completed``, ``call.started``,
        ``webhook.received``, a payment's …) once its ``signature`` verified with the app's
        secret; raises ``InvalidSignature`` otherwise (a forged or altered event, or an
        invocation that is not an event). The secret: ``secret``, else the link's (a hosted
        app's runtime, the simulator's ``sim.app_secret``), else ``AETHERIAL_APP_SECRET``;
        ``SDKError`` when there is none. For payments, ``verify_payment_event`` also checks
        the status against the event's name."""
        if getattr(self, "kind", None) != "event":
            raise InvalidSignature("this invocation is not an event")
        if secret is None:
            host = getattr(self, "_host", None)
            secret = getattr(host, "app_secret", None) or os.environ.get(APP_SECRET_ENV)
        if not secret:
            raise SDKError(f"no app secret: pass secret= or set {APP_SECRET_ENV}")
        payload = getattr(self, "payload", None)
        name = getattr(self, "event_name", None)
        if not isinstance(payload, dict) or not verify_event(secret, payload):
            raise InvalidSignature(f"the {name} event's signature does not verify")
        return payload
