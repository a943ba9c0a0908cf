"""Media upload throughput and latency: 12-megapixel JPEG photos against `run.py`.

    .venv/bin/python bench/media_load.py [--clients 4] [--uploads 40]

Starts Aetherial on the embedded store (as `make run` does), signs up ``--clients`` people, and
has each upload a 4000 x 3000 JPEG (with EXIF) as soon as its previous upload was answered,
``--uploads`` in all: every upload is verified, turned upright, stripped of metadata, scaled
to 4096 px, re-encoded and thumbnailed (320 px WebP) before its 201. Prints uploads/s, p50/p99
latency, the server's CPU and peak RSS. Nothing is asserted about the figures; the exit code
is 1 only when an upload failed.

When ``bench/_search_scenario.py`` exists, its ``main()`` runs afterwards (the search scenario).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import cpu_seconds, descendants, rss_kb, start_aetherial

PASSWORD = "Correct-horse-9"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def photo_12mp() -> bytes:
    """A 4000 x 3000 JPEG with detail (a gradient and noise, so it compresses like a photo)
    and an EXIF block with an orientation and a GPS position."""
    import os

    width, height = 4000, 3000
    noise = Image.frombytes("L", (width, height), os.urandom(width * height))
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.ROTATE_180)))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, exif=exif.tobytes())
    return buffer.getvalue()


def server_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) or 0.0 for p in [pid, *descendants(pid)])


async def scenario(base: str, args: argparse.Namespace, pid: int) -> int:
    photo = photo_12mp()
    print(f"photo: 4000 x 3000 JPEG, {len(photo) / 1e6:.1f} MB")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        tokens = []
        for i in range(args.clients):
            account = {"username": f"media{i}", "email": f"m{i}@example.com", "password": PASSWORD}
            await session.post(base + "/api/v1/auth/register", json=account)
            async with session.post(
                base + "/api/v1/auth/login",
                json={"login": account["username"], "password": PASSWORD},
            ) as resp:
                tokens.append((await resp.json())["access_token"])

        latencies: list[float] = []
        failures: list[str] = []
        left = args.uploads

        async def client(token: str) -> None:
            nonlocal left
            while left > 0:
                left -= 1
                form = aiohttp.FormData()
                form.add_field("file", photo, filename="photo.jpg", content_type="image/jpeg")
                started = time.perf_counter()
                async with session.post(
                    base + "/api/v1/media", data=form, headers={"Authorization": f"Bearer {token}"}
                ) as resp:
                    body = await resp.json()
                latencies.append((time.perf_counter() - started) * 1000)
                if resp.status != 201 or "thumbnail_url" not in body.get("media", {}):
                    failures.append(f"{resp.status}: {str(body)[:200]}")

        cpu_before, started = server_cpu(pid), time.perf_counter()
        await asyncio.gather(*[client(t) for t in tokens])
        elapsed = time.perf_counter() - started
        cpu = server_cpu(pid) - cpu_before
        peak = max((rss_kb(p) or 0) for p in [pid])
    print(
        f"{len(latencies)} uploads by {args.clients} clients in {elapsed:.1f} s: "
        f"{len(latencies) / elapsed:.2f} uploads/s, "
        f"p50 {statistics.median(latencies):.0f} ms, p99 {percentile(latencies, 99):.0f} ms; "
        f"server CPU {cpu:.1f} s ({cpu / elapsed * 100:.0f}% of one core), "
        f"gateway RSS now {peak / 1024:.0f} MiB"
    )
    for failure in failures[:5]:
        print("FAILED", failure)
    return 1 if failures else 0


def run_search_scenario() -> None:
    path = Path(__file__).with_name("_search_scenario.py")
    if not path.exists():
        return
    spec = importlib.util.spec_from_file_location("bench._search_scenario", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    result = module.main()
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--uploads", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_aetherial(Path(tmp))
        try:
            code = asyncio.run(scenario(server.url, args, server.pid))  # type: ignore[attr-defined]
        finally:
            server.stop()
    run_search_scenario()
    return code


if __name__ == "__main__":
    sys.exit(main())
