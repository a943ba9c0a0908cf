"""Accounts: registration and profile edits."""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from pymongo.errors import DuplicateKeyError

from messaging.actions import media
from messaging.actions.email import do_send_signup_verification
from messaging.actions.limits import address_bucket, check_limit
from messaging.actions.stats import note_signup
from messaging.context import Messaging
from messaging.passwords import check_password_strength
from storage.errors import AppError
from storage.mongo import iso, new_id, now_ms

USERNAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{2,31}")
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}")
DISPLAY_NAME_MAX = 64
BIO_MAX = 280
AVATAR_URL_MAX = 2048
# A BCP 47 tag as the platform keeps it: language, then optionally script and region, each in its
# canonical letter case ("en", "en-GB", "zh-Hans-CN", "es-419"). Apps format prices and dates with
# it (babel), so only tags a formatting library can read are stored.
LOCALE_RE = re.compile(r"[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?")
LOCALE_MAX = 35
DEFAULT_LOCALE = "en"  # what apps are told for a person who chose none
TIME_ZONE_MAX = 64
DEFAULT_TIME_ZONE = "UTC"  # what apps are told for a person who chose none
# Names the tz database's files carry that are not zones a person lives in: ``localtime`` is the
# server's own zone, the others are compilation artefacts.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def user_view(user: dict[str, Any], *, private: bool = False) -> dict[str, Any]:
    """The JSON shape of a user; ``private`` adds fields only the owner sees."""
    view = {
        "id": user["_id"],
        "username": user["username"],
        "display_name": user.get("display_name") or user["username"],
        "bio": user.get("bio", ""),
        "avatar_url": user.get("avatar_url"),
        "created_at": iso(user["created_at"]),
    }
    if private:
        view["email"] = user["email"]
        view["locale"] = user.get("locale")
        view["time_zone"] = user.get("time_zone")
        view["email_verified"] = user.get("email_verified_at") is not None
        view["mfa_enabled"] = bool(user.get("mfa_enabled"))
    return view


def _invalid(field: str, message: str) -> AppError:
    return AppError("invalid_field", message, details={"field": field})


def check_register(username: str, email: str, password: str) -> tuple[str, str]:
    """Validate the fields of a new account; return the normalised username and email."""
    username = username.strip()
    email = email.strip()
    if not USERNAME_RE.fullmatch(username):
        raise _invalid(
            "username",
            "username must be 3-32 characters: a letter, then letters, digits, '_' or '.'",
        )
    if len(email) > 254 or not EMAIL_RE.fullmatch(email):
        raise _invalid("email", "email is not a valid address")
    check_password_strength(password, username=username, email=email)
    return username, email


async def check_register_rate(ctx: Messaging, address: str) -> None:
    """Count a sign-up attempt from ``address`` against its own budget, then against everyone's.
    Every attempt counts, refused ones too (they are probing), and it is counted before anything
    else: each sign-up costs an argon2id hash. An address past its own budget is refused before
    it can eat into the global one."""
    cfg = ctx.config
    await check_limit(
        ctx,
        f"register:addr:{address_bucket(address)}",
        cfg.register_max_per_address,
        cfg.register_window,
        "sign-ups from your address",
    )
    await check_limit(
        ctx, "register:all", cfg.register_max_global, cfg.register_window, "sign-ups right now"
    )


async def do_register(
    ctx: Messaging, *, username: str, email: str, password: str, address: str
) -> dict:
    await check_register_rate(ctx, address)
    username, email = check_register(username, email, password)
    now = now_ms()
    user = {
        "_id": new_id(),
        "username": username,
        "username_lower": username.lower(),
        "email": email,
        "email_lower": email.lower(),
        "password_hash": await ctx.passwords.hash(password),
        "display_name": username,
        "bio": "",
        "avatar_url": None,
        "role": "user",
        "suspended": False,
        "email_verified_at": None,  # set when the mailed link is followed (actions/email.py)
        "mfa_enabled": False,  # two-factor sign-in (actions/mfa.py)
        "created_at": now,
        "updated_at": now,
    }
    try:
        await ctx.users.add_user(user)
    except DuplicateKeyError:
        # The unique index decided; find out which field lost so the message is precise.
        taken = await ctx.users.taken_fields(user["username_lower"], user["email_lower"])
        field = taken[0] if taken else "username"
        raise AppError(
            f"{field}_taken",
            f"that {field} is already registered",
            status=409,
            details={"field": field},
        ) from None
    await do_send_signup_verification(ctx, user)  # the account works meanwhile
    await note_signup(ctx)
    return user


def check_locale(locale: Any) -> str | None:
    """A locale as stored: a BCP 47 tag matching ``LOCALE_RE`` exactly, or None (none chosen)."""
    if locale is None:
        return None
    if not isinstance(locale, str) or len(locale) > LOCALE_MAX or not LOCALE_RE.fullmatch(locale):
        raise _invalid(
            "locale",
            "locale must be a BCP 47 tag such as en, en-GB, de-DE or zh-Hans-CN, or null",
        )
    return locale


@cache
def time_zones() -> frozenset[str]:
    """The IANA time zone names the platform accepts (``Europe/Berlin``, ``UTC``): the tz
    database's, read once (it lists a few hundred files)."""
    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES)


def check_time_zone(time_zone: Any) -> str | None:
    """A time zone as stored: an IANA name of ``time_zones()`` exactly, or None (none chosen)."""
    if time_zone is None:
        return None
    if not isinstance(time_zone, str) or time_zone not in time_zones():
        raise _invalid(
            "time_zone",
            "time_zone must be an IANA time zone name such as Europe/Berlin or "
            "America/New_York, or null",
        )
    return time_zone


def check_profile_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise a profile patch (display_name, bio, avatar_url, locale,
    time_zone); an ``avatar_media_id`` is checked by ``check_avatar_change``."""
    clean: dict[str, Any] = {}
    if "display_name" in changes:
        name = " ".join(str(changes["display_name"]).split())
        if not 1 <= len(name) <= DISPLAY_NAME_MAX:
            raise _invalid("display_name", f"display_name must be 1-{DISPLAY_NAME_MAX} characters")
        clean["display_name"] = name
    if "bio" in changes:
        bio = str(changes["bio"]).strip()
        if len(bio) > BIO_MAX:
            raise _invalid("bio", f"bio must be at most {BIO_MAX} characters")
        clean["bio"] = bio
    if "avatar_url" in changes:
        url = changes["avatar_url"]
        if url is not None:
            parts = urlsplit(url)
            if (
                len(url) > AVATAR_URL_MAX
                or parts.scheme not in {"http", "https"}
                or not parts.netloc
            ):
                raise _invalid("avatar_url", "avatar_url must be an http(s) URL or null")
        clean["avatar_url"] = url
    if "locale" in changes:
        clean["locale"] = check_locale(changes["locale"])
    if "time_zone" in changes:
        clean["time_zone"] = check_time_zone(changes["time_zone"])
    if "avatar_media_id" in changes and "avatar_url" in changes:
        raise _invalid("avatar_media_id", "send avatar_media_id or avatar_url, not both")
    if not clean and "avatar_media_id" not in changes:
        raise AppError(
            "empty_update",
            "nothing to change: send display_name, bio, locale, time_zone, avatar_media_id or "
            "avatar_url",
        )
    return clean


async def check_avatar_change(ctx: Messaging, user_id: str, changes: dict[str, Any]) -> dict:
    """The user-document fields for an ``avatar_media_id`` (an image you uploaded, or null):
    the media id and its avatar URL (valid while it is your avatar)."""
    if "avatar_media_id" not in changes:
        return {}
    media_id = changes["avatar_media_id"]
    if media_id is None:
        return {"avatar_media_id": None, "avatar_url": None}
    await media.check_avatar(ctx, user_id, media_id)
    return {"avatar_media_id": media_id, "avatar_url": media.avatar_url(ctx, media_id)}


async def do_update_profile(ctx: Messaging, user_id: str, changes: dict[str, Any]) -> dict:
    clean = check_profile_changes(changes)
    clean.update(await check_avatar_change(ctx, user_id, changes))
    if "avatar_url" in changes:  # an outside picture replaces an uploaded one
        clean["avatar_media_id"] = None
    clean["updated_at"] = now_ms()
    before = await ctx.users.get_user(user_id) if "avatar_media_id" in clean else None
    if clean.get("avatar_media_id"):
        await media.do_set_avatar_of(ctx, f"user:{user_id}", clean["avatar_media_id"], None)
    user = await ctx.users.update_user(user_id, clean)
    if user is None:
        raise AppError("user_not_found", "that account no longer exists", status=404)
    if before is not None:
        await media.do_set_avatar_of(
            ctx, f"user:{user_id}", user.get("avatar_media_id"), before.get("avatar_media_id")
        )
    return user


async def check_password(ctx: Messaging, user: dict[str, Any], password: str) -> None:
    """The account's password again, or raise ``wrong_password`` (403) or ``rate_limited``.

    Wrong passwords share the login's per-account failure budget (counted before the check,
    forgotten on success), so this is no side door for guessing the password."""
    key = f"login:acct:{user['_id']}"
    cfg = ctx.config
    await check_limit(
        ctx, key, cfg.login_max_failures, cfg.login_window, "failed password attempts"
    )
    if not password or not await ctx.passwords.verify(user.get("password_hash"), password):
        raise AppError(
            "wrong_password", "that is not your password", status=403, details={"field": "password"}
        )
    await ctx.limiter.reset(key)
