"""Liveness, readiness and the API description."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.api import Api
from gateway.keys import APIS, CONFIG, DATABASE, MINIAPPS, PUBSUB
from gateway.openapi import build_openapi
from storage.errors import AppError

api = Api("health", "Liveness, readiness and this document")

CHECK_TIMEOUT = 2.0


@api.get(
    "/healthz",
    auth=False,
    summary="The process is alive",
    response={"type": "object", "properties": {"status": {"const": "ok"}}},
)
async def healthz(request: web.Request) -> dict:
    return {"status": "ok"}


async def _check(name: str, probe) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT)
        return name, "ok"
    except Exception as exc:
        return name, f"unreachable: {type(exc).__name__}"


@api.get(
    "/readyz",
    auth=False,
    summary="Dependencies (MongoDB, Redis) are reachable",
    errors=("not_ready",),
)
async def readyz(request: web.Request) -> dict:
    """200 when every configured dependency answers; else 503 ``not_ready`` naming it."""
    probes = [_check("mongodb", request.app[DATABASE].ping)]
    if request.app[CONFIG].redis_url:
        probes.append(_check("redis", request.app[PUBSUB].ping))
    checks = dict(await asyncio.gather(*probes))
    checks.setdefault("redis", "not configured")
    checks["sandbox"] = "degraded" if request.app[MINIAPPS].degraded else "ok"
    # A degraded sandbox is reported, not fatal: the platform still serves.
    failing = [
        name for name, state in checks.items() if state not in {"ok", "not configured", "degraded"}
    ]
    if failing:
        raise AppError(
            "not_ready",
            f"not ready: {', '.join(failing)} unreachable",
            status=503,
            details={"checks": checks},
        )
    return {"status": "ready", "checks": checks}


@api.get("/openapi.json", auth=False, summary="This API, as OpenAPI 3.1")
async def openapi(request: web.Request) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        current = version("aetherial")
    except PackageNotFoundError:
        current = "0.0.0"
    return build_openapi(request.app[APIS], version=current)
