"""Search terms: what a message is indexed under, what a query asks for, and where it matched.

Pure text functions, no I/O. Neither MongoDB's ``$text`` nor nx-27017's can search Chinese or
Japanese (a run of CJK characters has no spaces, so it is one "word") or emoji, and nx-27017 has
no stemming; so we make the terms ourselves and let the text index only *find* them:

* **Folding**: NFKD, combining marks dropped (except the kana voicing marks, so が stays が),
  NFC again, case-folded: ``Café`` and ``cafe`` are one term, full-width letters are ASCII ones.
* **Words** (letters and digits of scripts written with spaces) are indexed under every prefix
  of 2 to ``PREFIX_MAX`` characters (one-letter words under themselves), so ``hel`` finds
  ``hello``: a query word matches a word that starts with it.
* **CJK runs** (Han, kana, Hangul) are indexed under every character and every pair of
  neighbouring characters; a query run asks for its pairs, and then must occur as is.
* **Emoji** (and other symbols) are one term each; skin-tone modifiers and variation selectors
  are dropped.

Each term becomes one index token of ASCII letters and digits (other terms are hex-encoded), so
any text tokenizer (MongoDB's with ``default_language: "none"``, SQLite FTS5's in nx-27017)
keeps it whole. A token can collide with another (a word that looks like a hex encoding): the
candidates the index returns are always checked again here (``find_matches``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

PREFIX_MAX = 20  # longer words are indexed (and looked up) by their first PREFIX_MAX characters
INDEX_TOKENS_MAX = 10_000  # a message's tokens past this are not indexed (a 4,000-char CJK text
# has ~8,000)
QUERY_TOKENS_MAX = 16  # index tokens asked of the store; every term is still checked in code
SNIPPET_CHARS = 100  # the longest snippet, in characters, without its ellipses
SNIPPET_LEAD = 30  # characters of context kept before the first match
ELLIPSIS = "…"

_KANA_MARKS = {"\u3099", "\u309a"}  # combining (semi-)voiced sound marks: part of the kana
# Dropped around emoji: variation selectors, skin tones, joiners (so 👍🏽 is the term 👍).
_EMOJI_PARTS = {"\ufe0e", "\ufe0f", "\u200d"}


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x3040 <= cp <= 0x30FF  # hiragana, katakana (and ー)
        or 0x31F0 <= cp <= 0x31FF  # katakana phonetic extensions
        or 0x3400 <= cp <= 0x4DBF  # CJK extension A
        or 0x4E00 <= cp <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= cp <= 0xFAFF  # compatibility ideographs
        or 0x20000 <= cp <= 0x3134F  # extensions B-G
        or 0xAC00 <= cp <= 0xD7AF  # Hangul syllables
        or 0x1100 <= cp <= 0x11FF  # Hangul jamo
        or 0x3130 <= cp <= 0x318F  # Hangul compatibility jamo
        or cp in (0x3005, 0x3006, 0x3007)  # iteration mark, closing mark, ideographic zero
    )


@lru_cache(maxsize=8192)
def fold_char(ch: str) -> str:
    """One character folded: lower-cased, accents dropped, compatibility forms unified."""
    decomposed = unicodedata.normalize("NFKD", ch)
    kept = "".join(
        c for c in decomposed if c in _KANA_MARKS or unicodedata.category(c) not in ("Mn", "Me")
    )
    return unicodedata.normalize("NFC", kept).casefold()


def fold(text: str) -> tuple[str, list[int]]:
    """``text`` folded, and for each folded character the index of the original it came from."""
    parts: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        folded = fold_char(ch)
        if folded in _KANA_MARKS and parts and parts[-1]:
            # A separate voicing mark (half-width ﾞ) joins its kana: ｶﾞ folds like ガ.
            joined = unicodedata.normalize("NFC", parts[-1][-1] + folded)
            if len(joined) == 1:
                parts[-1] = parts[-1][:-1] + joined
                continue
        parts.append(folded)
        origin.extend([index] * len(folded))
    return "".join(parts), origin


def fold_text(text: str) -> str:
    return fold(text)[0]


def _kind(ch: str) -> str | None:
    if _is_cjk(ch):
        return "cjk"
    if ch.isalnum():
        return "word"
    if ch in _EMOJI_PARTS:
        return None
    category = unicodedata.category(ch)
    if category == "So":
        return "emoji"
    return None  # a separator (spaces, punctuation, skin-tone modifiers are "Sk")


@dataclass(frozen=True)
class Segment:
    kind: str  # word | cjk | emoji
    start: int  # in the folded text
    end: int

    def text(self, folded: str) -> str:
        return folded[self.start : self.end]


def segments(folded: str) -> list[Segment]:
    """Words, CJK runs and single emoji of a folded text, in order."""
    found: list[Segment] = []
    start, kind = 0, None
    for index, ch in enumerate(folded):
        current = _kind(ch)
        if current == kind and current in ("word", "cjk"):
            continue
        if kind in ("word", "cjk"):
            found.append(Segment(kind, start, index))
        if current == "emoji":
            found.append(Segment("emoji", index, index + 1))
            kind = None
        else:
            start, kind = index, current
    if kind in ("word", "cjk"):
        found.append(Segment(kind, start, len(folded)))
    return found


def encode_token(term: str) -> str:
    """An index token of ASCII letters and digits only (any tokenizer keeps it whole)."""
    if term.isascii() and term.isalnum():
        return term
    return "x" + term.encode("utf-8").hex()


def _terms_of_segment(kind: str, text: str) -> list[str]:
    if kind == "word":
        if len(text) == 1:
            return [text]
        return [text[:k] for k in range(2, min(len(text), PREFIX_MAX) + 1)]
    if kind == "cjk":
        return list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
    return [text]


def index_text(text: str) -> str:
    """What a message with ``text`` is indexed under: its tokens, space-separated."""
    if not text:
        return ""
    folded, _ = fold(text)
    tokens: dict[str, None] = {}
    for segment in segments(folded):
        for term in _terms_of_segment(segment.kind, segment.text(folded)):
            tokens.setdefault(encode_token(term))
            if len(tokens) >= INDEX_TOKENS_MAX:
                return " ".join(tokens)
    return " ".join(tokens)


@dataclass(frozen=True)
class Query:
    """A parsed query: each part must match (AND)."""

    words: tuple[str, ...]
    runs: tuple[str, ...]  # CJK runs
    emoji: tuple[str, ...]
    folded: str  # the whole query folded, whitespace collapsed (for names and titles)

    @property
    def tokens(self) -> list[str]:
        """Index tokens a matching message must have (a bounded subset of all of them)."""
        terms: dict[str, None] = {}
        for word in self.words:
            terms.setdefault(word[:PREFIX_MAX])
        for run in self.runs:
            if len(run) == 1:
                terms.setdefault(run)
            for i in range(len(run) - 1):
                terms.setdefault(run[i : i + 2])
        for symbol in self.emoji:
            terms.setdefault(symbol)
        # Longer terms first: they narrow the candidates most.
        ordered = sorted(terms, key=len, reverse=True)[:QUERY_TOKENS_MAX]
        return [encode_token(term) for term in ordered]


def parse_query(q: str) -> Query | None:
    """The query's terms, or None when it has no letter, digit, CJK character or emoji."""
    folded, _ = fold(q)
    words: dict[str, None] = {}
    runs: dict[str, None] = {}
    emoji: dict[str, None] = {}
    for segment in segments(folded):
        target = {"word": words, "cjk": runs, "emoji": emoji}[segment.kind]
        target.setdefault(segment.text(folded))
    if not (words or runs or emoji):
        return None
    return Query(tuple(words), tuple(runs), tuple(emoji), " ".join(folded.split()))


def _extend_end(text: str, end: int) -> int:
    """Past the marks that belong to the last matched character (accents, skin tones, VS16)."""
    while end < len(text):
        ch = text[end]
        if (
            ch in _EMOJI_PARTS
            or unicodedata.category(ch) in ("Mn", "Me", "Sk")
            or fold_char(ch) in _KANA_MARKS
        ):
            end += 1
        else:
            break
    return end


def find_matches(text: str, query: Query) -> list[tuple[int, int]] | None:
    """Where ``query`` matches ``text`` (sorted, merged [start, end) ranges of ``text``), or
    None when some part of it does not match."""
    folded, origin = fold(text)
    if not folded:
        return None
    found: list[tuple[int, int]] = []
    parts = segments(folded)
    words = [s for s in parts if s.kind == "word"]
    for word in query.words:
        hits = [
            (s.start, s.start + len(word))
            for s in words
            if (s.text(folded) == word if len(word) == 1 else s.text(folded).startswith(word))
        ]
        if not hits:
            return None
        found.extend(hits)
    for needle in (*query.runs, *query.emoji):
        hits = []
        at = folded.find(needle)
        while at >= 0:
            hits.append((at, at + len(needle)))
            at = folded.find(needle, at + len(needle))
        if not hits:
            return None
        found.extend(hits)
    ranges = sorted((origin[start], _extend_end(text, origin[end - 1] + 1)) for start, end in found)
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def utf16_offset(text: str, index: int) -> int:
    """The UTF-16 code unit offset of character ``index`` (what JavaScript strings count)."""
    return index + sum(1 for ch in text[:index] if ord(ch) > 0xFFFF)


def snippet(text: str, matches: list[tuple[int, int]]) -> tuple[str, list[list[int]]]:
    """A window of ``text`` around the first match, and the matches in it as [start, end]
    offsets into the snippet in UTF-16 code units (as JavaScript's ``String.slice`` counts;
    Telegram's message entities count the same way)."""
    start, end = 0, len(text)
    if len(text) > SNIPPET_CHARS:
        first = matches[0][0] if matches else 0
        start = max(0, first - SNIPPET_LEAD)
        end = min(len(text), start + SNIPPET_CHARS)
        start = max(0, end - SNIPPET_CHARS)
        # Never cut a surrogate-free character in half: Python indexes code points, so any cut
        # is on a character boundary; keep combining marks with their base.
        while start > 0 and unicodedata.category(text[start]) in ("Mn", "Me"):
            start -= 1
    lead = ELLIPSIS if start > 0 else ""
    window = lead + text[start:end] + (ELLIPSIS if end < len(text) else "")
    shift = len(lead) - start
    highlights = []
    for match_start, match_end in matches:
        a, b = max(match_start, start), min(match_end, end)
        if a < b:
            highlights.append([utf16_offset(window, a + shift), utf16_offset(window, b + shift)])
    return window, highlights


def name_matches(query: Query, *names: str) -> bool:
    """People, conversations and apps: the folded query occurs in a folded name, or every
    part of it matches (words as prefixes of words)."""
    for name in names:
        if not name:
            continue
        if query.folded and query.folded in fold_text(name):
            return True
        if find_matches(name, query) is not None:
            return True
    return False
