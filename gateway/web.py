"""The web chat and the admin panel: static pages built into ``gateway/web/dist`` (``make web``).

``GET /`` is the chat (``dist/index.html``), ``GET /admin`` the admin panel (``dist/admin.html``),
``GET /static/<path>`` any file of ``dist/``, ``GET /sw.js`` the service worker (Web Push; at the
root so that its scope is the whole site). These routes are not API: they are left out of
OpenAPI (their route names start with ``web:``). Without a build, ``/`` says how to make one and
the API keeps working. Every page is sent with a Content-Security-Policy that allows only our
own scripts (no inline code), sockets to this host, camera/microphone streams and sandboxed
frames for mini-program web views (HTTPS, or a hosted app's page served by this gateway).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from aiohttp import web

ROUTE_PREFIX = "web:"
DIST_DIR = Path(__file__).resolve().parent / "web" / "dist"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Aetherial</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Aetherial</h1>
<p>The web client is not built. Run <code>make web</code> (it needs Node.js and npm), then
reload this page. The API is running: see <a href="/openapi.json">/openapi.json</a>.</p>
</main></body></html>
"""

NOT_FOUND = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found · Aetherial</title></head>
<body><main><h1>Not found</h1><p>{what} is not part of this build.
<a href="/">Back to the chat</a>.</p></main></body></html>
"""


def content_security_policy(request: web.Request) -> str:
    host = request.host
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' https: data: blob:",
            "media-src 'self' blob: mediastream:",
            f"connect-src 'self' ws://{host} wss://{host}",
            # The app's own HTTPS site, or a hosted app's page served here (/miniapps/…/web/).
            "frame-src 'self' https:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _headers(request: web.Request) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(request),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(self), microphone=(self), geolocation=()",
        "Cache-Control": "no-cache",
    }


def register_web(app: web.Application, dist_dir: Path = DIST_DIR) -> None:
    """Serve the built web client from ``dist_dir`` (checked per request, so a build made while
    the gateway runs is picked up)."""
    dist_dir = Path(dist_dir).resolve()

    def page(name: str, missing: str):
        async def handler(request: web.Request) -> web.StreamResponse:
            path = dist_dir / name
            if path.is_file():
                return web.FileResponse(path, headers=_headers(request))
            if missing == "not_built":
                return web.Response(
                    text=NOT_BUILT, content_type="text/html", headers=_headers(request)
                )
            return web.Response(
                text=NOT_FOUND.format(what=escape(request.path)),
                status=404,
                content_type="text/html",
                headers=_headers(request),
            )

        return handler

    async def static(request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        path = (dist_dir / relative).resolve()
        # Only files inside dist/: no "..", no symlinks out, no directories.
        if not path.is_relative_to(dist_dir) or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=_headers(request))

    async def service_worker(request: web.Request) -> web.StreamResponse:
        # A service worker controls only the paths under its script's folder: served from the
        # root, it covers the whole chat. ``no-cache``: the browser revalidates it on every
        # update check, so a new build reaches open browsers.
        path = dist_dir / "sw.js"
        if not path.is_file():
            raise web.HTTPNotFound()
        headers = {**_headers(request), "Content-Type": "text/javascript; charset=utf-8"}
        return web.FileResponse(path, headers=headers)

    app.router.add_get("/", page("index.html", "not_built"), name=ROUTE_PREFIX + "index")
    app.router.add_get("/sw.js", service_worker, name=ROUTE_PREFIX + "service_worker")
    app.router.add_get("/admin", page("admin.html", "not_found"), name=ROUTE_PREFIX + "admin")
    app.router.add_get("/static/{path:.+}", static, name=ROUTE_PREFIX + "static")


def is_web_route(route: web.AbstractRoute) -> bool:
    """Whether a route is one of these pages (not API, not in OpenAPI)."""
    return bool(route.name and route.name.startswith(ROUTE_PREFIX))
