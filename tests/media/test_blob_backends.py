"""The two blob backends behind one interface: local content-addressed files and GridFS."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from tests.conftest import make_config
from tests.helpers import ApiClient
from tests.media.media_helpers import fetch, jpeg, ogg_opus, upload


@pytest.mark.parametrize("backend", ["local", "gridfs"])
async def test_upload_serve_and_ranges_on_each_backend(
    backend, aiohttp_server, mongo_url, mongo_db_name, tmp_path
):
    config = make_config(mongo_url, mongo_db_name, tmp_path / "var", media_backend=backend)
    server = await aiohttp_server(create_app(config))
    api = ApiClient(str(server.make_url("")).rstrip("/"))
    try:
        await api.signup()
        photo = jpeg(700, 500)
        _, first = await upload(api, photo)
        _, second = await upload(api, photo)
        # Two media, one stored blob: the bytes are content-addressed.
        assert first["media"]["id"] != second["media"]["id"]
        _, h1, d1 = await fetch(api, first["media"]["url"])
        _, h2, d2 = await fetch(api, second["media"]["url"])
        assert d1 == d2 and h1["ETag"] == h2["ETag"]
        blobs = list((config.data_dir / "media" / "blobs").rglob("*"))
        if backend == "local":
            assert len([p for p in blobs if p.is_file()]) == 2  # the image and its thumbnail
        else:
            assert blobs == []  # nothing on the node's disk: it is all in MongoDB

        _, voice = await upload(api, ogg_opus(3.0), filename="v.ogg", content_type="audio/ogg")
        url, size = voice["media"]["url"], voice["media"]["size"]
        status, _, whole = await fetch(api, url)
        assert status == 200 and len(whole) == size
        status, headers, tail = await fetch(api, url, {"Range": "bytes=-20"})
        assert status == 206 and tail == whole[-20:]
        assert headers["Content-Range"] == f"bytes {size - 20}-{size - 1}/{size}"
        status, _, middle = await fetch(api, url, {"Range": "bytes=10-"})
        assert status == 206 and middle == whole[10:]
    finally:
        await api.close()
