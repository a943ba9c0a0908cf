"""Proving it is really you before something that cannot be undone (exporting or deleting your
data): a signed-in session is not enough — a device left open must not hand over the account —
so these actions ask for the password again, and for a second-factor code when two-factor
sign-in is on."""

from __future__ import annotations

from typing import Any

from messaging.actions.accounts import check_password
from messaging.context import Messaging
from storage.errors import AppError


async def check_reauth(ctx: Messaging, user: dict[str, Any], password: str, code: Any) -> None:
    """The account's password (``check_password``) and ``code`` when two-factor sign-in is on,
    or raise: ``wrong_password`` (403), ``mfa_code_required`` (403), the second factor's own
    errors (``wrong_code``, ``code_already_used``, ``invalid_code``), or ``rate_limited``."""
    await check_password(ctx, user, password)
    if not user.get("mfa_enabled"):
        return
    if not isinstance(code, str) or not code.strip():
        raise AppError(
            "mfa_code_required",
            "two-factor sign-in is on: send a code from your authenticator app (or a recovery "
            "code) as code",
            status=403,
            details={"field": "code"},
        )
    from messaging.actions.mfa import check_second_factor

    await check_second_factor(ctx, user, code.strip())
