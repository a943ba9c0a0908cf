"""REST routes: Media: photos, files and voice notes (upload, signed URLs)."""

from __future__ import annotations

from gateway.api import Api

api = Api("media", "Media: photos, files and voice notes (upload, signed URLs)")
