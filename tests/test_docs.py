"""The README stays true to the code: every setting is documented."""

from __future__ import annotations

from pathlib import Path

from storage.config import settings

ROOT = Path(__file__).resolve().parent.parent


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    table = {
        line.split("|")[1].strip().strip("`")
        for line in readme.splitlines()
        if line.startswith("| `")
    }
    names = {s["env"] for s in settings()}
    assert names <= table, f"undocumented settings: {sorted(names - table)}"
    assert not {n for n in table if n.isupper() and "_" in n} - names, "README lists unknown ones"


def test_realtime_doc_exists_and_names_connect_errors():
    text = (ROOT / "docs" / "realtime.md").read_text()
    for code in ("missing_token", "invalid_token", "token_expired", "session_revoked"):
        assert code in text
