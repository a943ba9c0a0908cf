"""The Aetherial mini-program SDK: protocol, runtime, client, simulator.

Write an app with ``App`` (decorators for commands, actions and events), answer with ``Reply``
and ``Card``/``Button``, test it offline with ``sdk.simulator.Simulator``, run it with
``python -m sdk.runtime <app dir>``. Payments: ``ctx.request_payment``, ``ctx.refund_payment``
and ``ctx.verify_payment_event`` in the ``payment.succeeded``/``payment.failed`` handlers. The SDK
imports nothing of the server; see docs/sdk.md.
"""

from sdk.app import App, Context, GroupState
from sdk.cards import Button, Card, Field, Reply
from sdk.errors import (
    AppError,
    AppLoadError,
    CardError,
    Conflict,
    DeadlineExceeded,
    HostError,
    InternalError,
    InvalidParams,
    InvalidSignature,
    ManifestError,
    NotFound,
    NotPaid,
    OrderRefReused,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    RefundExceedsPayment,
    ScopeDenied,
    SDKError,
    SignatureError,
    UnknownMethod,
    ViewError,
)
from sdk.manifest import load_manifest, validate_card, validate_manifest

__version__ = "1.1.0"

__all__ = [
    "App",
    "AppError",
    "AppLoadError",
    "Button",
    "Card",
    "CardError",
    "Conflict",
    "Context",
    "DeadlineExceeded",
    "Field",
    "GroupState",
    "HostError",
    "InternalError",
    "InvalidParams",
    "InvalidSignature",
    "ManifestError",
    "NotFound",
    "NotPaid",
    "OrderRefReused",
    "PermissionDenied",
    "QuotaExceeded",
    "RateLimited",
    "RefundExceedsPayment",
    "Reply",
    "SDKError",
    "ScopeDenied",
    "SignatureError",
    "UnknownMethod",
    "ViewError",
    "load_manifest",
    "validate_card",
    "validate_manifest",
]
