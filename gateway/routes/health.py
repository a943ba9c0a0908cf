"""Liveness, readiness and the API description."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.api import Api
from gateway.keys import APIS, CONFIG, DATABASE, MINIAPPS, PUBSUB, SIO
from gateway.openapi import build_openapi
from gateway.socket_manager import ResilientRedisManager
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


async def _redis_probe(request: web.Request) -> None:
    """Redis answers, and both subscribers (ours and Socket.IO's) are listening again."""
    await request.app[PUBSUB].ping()
    manager = request.app[SIO].manager
    if isinstance(manager, ResilientRedisManager) and not manager.listening:
        raise ConnectionError("the Socket.IO subscriber is reconnecting")


@api.get(
    "/readyz",
    auth=False,
    summary="Dependencies (MongoDB, Redis) are reachable",
    errors=("not_ready",),
)
async def readyz(request: web.Request) -> dict:
    """200 when the node can serve; MongoDB down: 503 ``not_ready`` naming it. Redis down is
    not fatal — every node keeps serving on its own (``storage/redis_client.py``) — so it is a
    200 whose ``checks.redis`` says ``unreachable: …`` until Redis and both subscribers are
    back."""
    probes = [_check("mongodb", request.app[DATABASE].ping)]
    if request.app[CONFIG].redis_url:
        probes.append(_check("redis", lambda: _redis_probe(request)))
    checks = dict(await asyncio.gather(*probes))
    checks.setdefault("redis", "not configured")
    checks["sandbox"] = "degraded" if request.app[MINIAPPS].degraded else "ok"
    # An app whose requirements are missing is disabled, the node still serves the others.
    unavailable = request.app[MINIAPPS].apps_catalogue.unavailable()
    checks["miniapps"] = (
        "degraded: " + "; ".join(f"{a}: {why}" for a, why in sorted(unavailable.items()))
        if unavailable
        else "ok"
    )
    if checks["mongodb"] != "ok":
        raise AppError(
            "not_ready",
            "not ready: mongodb unreachable",
            status=503,
            details={"checks": checks},
        )
    # A degraded sandbox or an unreachable Redis is reported in ``checks``, not fatal: this node
    # serves (a load balancer must not take every node out because Redis is down).
    return {"status": "ready", "checks": checks}


@api.get("/openapi.json", auth=False, summary="This API, as OpenAPI 3.1")
async def openapi(request: web.Request) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        current = version("aetherial")
    except PackageNotFoundError:
        current = "0.0.0"
    return build_openapi(request.app[APIS], version=current)
