"""gateway/web.py: the built client's pages, their headers, and the page shown without a build."""

from __future__ import annotations

from aiohttp import web

from gateway.web import is_web_route, register_web


def _app(dist) -> web.Application:
    app = web.Application()
    register_web(app, dist)
    return app


async def test_without_a_build_the_root_says_how_to_build(aiohttp_client, tmp_path):
    client = await aiohttp_client(_app(tmp_path / "missing"))
    response = await client.get("/")
    assert response.status == 200
    text = await response.text()
    assert "make web" in text and "Node" in text
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    response = await client.get("/admin")
    assert response.status == 404 and "not part of this build" in await response.text()
    assert (await client.get("/static/app.js")).status == 404


async def test_serves_only_files_inside_dist(aiohttp_client, tmp_path):
    dist = tmp_path / "dist"
    (dist / "vendor").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>chat</title>")
    (dist / "admin.html").write_text("<!doctype html><title>admin</title>")
    (dist / "vendor" / "x.js").write_text("export const x = 1;")
    (tmp_path / "secret.txt").write_text("no")
    client = await aiohttp_client(_app(dist))
    assert "chat" in await (await client.get("/")).text()
    assert "admin" in await (await client.get("/admin")).text()
    response = await client.get("/static/vendor/x.js")
    assert response.status == 200 and "javascript" in response.headers["Content-Type"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/vendor"):
        assert (await client.get(path)).status == 404, path


def test_web_routes_are_marked_as_not_api(tmp_path):
    app = _app(tmp_path)
    routes = [r for r in app.router.routes() if r.method != "HEAD"]
    assert routes and all(is_web_route(r) for r in routes)
