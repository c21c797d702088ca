"""Word splitting with exact character offsets, and span checks (used by :mod:`models.data`).

Like BERT's basic tokenizer: split on whitespace, every punctuation character and every
CJK ideograph is a word of its own. Unlike it, nothing is removed or normalised: combining
marks, variation selectors, zero-width joiners and other format characters stay attached to
the character before them, so every non-whitespace character lands in exactly one word.
"""

from __future__ import annotations

import bisect
import itertools
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

from models.errors import DataError

Span = tuple[int, int, str]
"""``(start, end, label)`` in characters, end exclusive."""

_SPACE, _WORD, _ALONE, _EXTEND = range(4)
_EXTEND_CATEGORIES = frozenset({"Mn", "Mc", "Me", "Cf"})
_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2CEAF),
    (0x2F800, 0x2FA1F),
    (0x30000, 0x3134F),
)


def _is_ascii_punct(cp: int) -> bool:
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126


@lru_cache(maxsize=4096)
def _kind(ch: str) -> int:
    if ch.isspace():
        return _SPACE
    cp = ord(ch)
    if _is_ascii_punct(cp):
        return _ALONE
    category = unicodedata.category(ch)
    if category in _EXTEND_CATEGORIES:
        return _EXTEND
    if category.startswith("P") or any(lo <= cp <= hi for lo, hi in _CJK_RANGES):
        return _ALONE
    return _WORD


def split_words(text: str, boundaries: Iterable[int] = ()) -> list[tuple[int, int]]:
    """Word spans ``(start, end)`` of ``text``, ordered and non-overlapping.

    ``boundaries`` are extra character positions where a word must end (entity edges, say);
    positions outside ``(0, len(text))`` are ignored.
    """
    forced = {b for b in boundaries if 0 < b < len(text)}
    spans: list[tuple[int, int]] = []
    start = -1
    alone = False
    for i, ch in enumerate(text):
        kind = _kind(ch)
        if start >= 0 and (kind == _SPACE or i in forced or (kind != _EXTEND and (alone or kind == _ALONE))):
            spans.append((start, i))
            start = -1
        if kind != _SPACE and start < 0:
            start, alone = i, kind == _ALONE
    if start >= 0:
        spans.append((start, len(text)))
    return spans


def check_spans(
    text: str, spans: Sequence[Span], what: str, check_kind: Callable[[str], None] | None = None
) -> list[Span]:
    """Validated spans, sorted, trimmed of surrounding whitespace; overlaps are an error."""
    out: list[Span] = []
    for span in spans:
        if len(span) != 3:
            raise DataError(f"{what} {span!r}: expected (start, end, label)")
        s, e, kind = span
        if not (isinstance(s, int) and isinstance(e, int)) or isinstance(s, bool) or isinstance(e, bool):
            raise DataError(f"{what} {span!r}: start and end must be integers")
        if not 0 <= s < e <= len(text):
            raise DataError(f"{what} {span!r}: need 0 <= start < end <= {len(text)} (text length)")
        if check_kind is not None:
            check_kind(kind)
        piece = text[s:e]
        if not piece.strip():
            raise DataError(f"{what} {span!r} covers only whitespace")
        out.append((s + len(piece) - len(piece.lstrip()), e - len(piece) + len(piece.rstrip()), kind))
    ordered = sorted(spans, key=lambda sp: (sp[0], sp[1]))
    for prev, cur in itertools.pairwise(ordered):
        if cur[0] < prev[1]:
            raise DataError(f"{what}s overlap: {prev!r} and {cur!r}")
    return sorted(out)


def covered(starts: list[int], start: int, end: int) -> range:
    """Indices of the words inside ``[start, end)`` (which lies on word edges)."""
    return range(bisect.bisect_left(starts, start), bisect.bisect_left(starts, end))
