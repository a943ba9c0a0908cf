"""Errors an app meets: host errors (answers to capability calls), app errors (answers the app
gives the host), validation errors for manifests, cards and signatures, and the simulator's
``AppCallError``/``HostRefused``.

Every host error carries the stable Aetherial code of PROTOCOL.md (``error.data.code``) as
``.code`` and a human sentence as ``.message``; catch the subclass you can handle::

    try:
        await ctx.set_group_state(state, expected_version=version)
    except Conflict:
        ...  # read again and retry
"""

from __future__ import annotations

from typing import Any


class SDKError(Exception):
    """Base of every error the SDK raises."""


class HostError(SDKError):
    """The host refused or failed a capability call; ``.code`` is ``error.data.code``."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, data: Any = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class PermissionDenied(HostError):
    """The capability is not in the manifest's ``permissions`` (or the event is not declared)."""

    code = "permission_denied"


class ScopeDenied(HostError):
    """The user has not granted (or has revoked) the scope this capability needs."""

    code = "scope_denied"


class InvalidParams(HostError):
    """The host rejected the call's parameters (bad card, text too long, expired call_id …)."""

    code = "invalid_params"


class NotFound(HostError):
    """The thing named does not exist (a message, a user …), or the app has no such handler."""

    code = "not_found"


class Conflict(HostError):
    """``group_state.set`` with a stale ``expected_version``: read the state again and retry."""

    code = "conflict"


class QuotaExceeded(HostError):
    """A size or storage quota would be exceeded."""

    code = "quota_exceeded"


class RateLimited(HostError):
    """Too many calls; try again later."""

    code = "rate_limited"


class DeadlineExceeded(HostError):
    """The host gave up waiting (``timeout``)."""

    code = "timeout"


class UnknownMethod(HostError):
    """The host has no such capability (``unknown_method``)."""

    code = "unknown_method"


class InternalError(HostError):
    """The host failed; nothing the app did wrong."""

    code = "internal_error"


class OrderRefReused(HostError):
    """``payments.request`` with an ``order_ref`` this app already used for another amount,
    currency or user: pick a new ``order_ref`` for a different order."""

    code = "order_ref_reused"


class NotPaid(HostError):
    """``payments.refund`` of a payment the user has not paid (pending, cancelled, expired)."""

    code = "not_paid"


class RefundExceedsPayment(HostError):
    """``payments.refund`` would bring the payment's refunds (all of them, cumulated) above the
    amount paid."""

    code = "refund_exceeds_payment"


HOST_ERRORS: dict[str, type[HostError]] = {
    cls.code: cls
    for cls in (
        PermissionDenied,
        ScopeDenied,
        InvalidParams,
        NotFound,
        Conflict,
        QuotaExceeded,
        RateLimited,
        DeadlineExceeded,
        UnknownMethod,
        InternalError,
        OrderRefReused,
        NotPaid,
        RefundExceedsPayment,
    )
}


def host_error(code: str, message: str, data: Any = None) -> HostError:
    """The ``HostError`` subclass for ``code`` (plain ``HostError`` for codes the SDK does not
    know yet), carrying ``message``."""
    cls = HOST_ERRORS.get(code)
    if cls is None:
        return HostError(message, code=code, data=data)
    return cls(message, data=data)


def host_error_from_response(error: Any) -> HostError:
    """The ``HostError`` for a JSON-RPC ``error`` object received from the host."""
    if not isinstance(error, dict):
        return InternalError(f"malformed error from the host: {error!r}")
    data = error.get("data")
    code = data.get("code") if isinstance(data, dict) else None
    message = str(error.get("message") or "")
    if not isinstance(code, str):
        code = "unknown_method" if error.get("code") == -32601 else "internal_error"
    return host_error(code, message, data)


class AppError(SDKError):
    """Raise it in a handler to answer the host with an error of your choosing::

    raise AppError("invalid_params", "a poll needs at least two options")
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ViewError(AppError):
    """Raise it in a web view's handler (``@app.view``) to refuse the page's call: the page's
    ``Aetherial.call`` promise rejects with an ``Error`` whose ``.code`` is ``code`` and whose
    ``.message`` is ``message`` (HTTP 400 from ``/api/v1/webviews/call``); ``sim.view`` raises
    it with the same code and message::

        raise ViewError("out_of_stock", "only 2 mugs left")
    """


class ManifestError(SDKError, ValueError):
    """A manifest does not validate; the message starts with the field at fault."""


class CardError(SDKError, ValueError):
    """A card does not validate; the message starts with the field at fault."""


class AppLoadError(SDKError):
    """An app folder cannot be loaded (no entry file, no module-level ``app`` …)."""


class SignatureError(SDKError):
    """A signed request or launch token does not verify; ``.code`` is ``bad_signature``,
    ``expired`` or ``replayed``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidSignature(SignatureError):
    """A payment event (``payment.succeeded`` / ``payment.failed``) whose ``signature`` does not
    verify with the app secret — a forged or altered event: ignore it, never fulfil an order on
    it. ``.code`` is ``bad_signature``. Raised by ``Context.verify_payment_event``."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_signature", message)


class AppCallError(SDKError):
    """Simulator: the app answered a request with an error (``.code``, ``.message``), or missed
    the deadline (``timeout``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HostRefused(SDKError):
    """Simulator: the host refused the user's action before the app saw it (``.code``:
    ``not_member``, ``unknown_command``, ``not_a_command``, ``message_not_found``,
    ``no_such_button``, ``event_not_accepted``; for payments ``payment_not_found``,
    ``payment_closed``, ``insufficient_funds``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
