"""Rule-based recognisers for finance/support text: tickers, money, percentages, e-mails, URLs.

Every regex is precompiled, has bounded quantifiers or a single-class tail, and starts with a
look-behind so it can only begin at the start of a run; matching stays linear on hostile
input. Matches from all recognisers are merged: on overlap the longest wins (then the
earlier, then the recogniser listed first).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PatternMatch:
    """``text[start:end] == match.text``."""

    start: int
    end: int
    label: str
    text: str


_EXCHANGES = (
    r"NYSE(?:[ ]?(?:American|Arca|MKT))?|NYSEArca|NASDAQ(?:GS|GM|CM)?|Nasdaq|AMEX|NYSEAMERICAN"
    r"|TSXV?|TSX-V|ASX|LSE|HKEX|SEHK|HKG|TYO|OTC(?:QX|QB|MKTS)?|Euronext|XETRA|FWB"
    r"|SWX|NSE|BSE|CBOE|BATS|SGX|KRX|KOSDAQ|JSE|NZX|BMV|BVMF"
)
_NUM = r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?)"
_SCALE = r"(?:(?:bn|mn|mln|tn|[mkbMKB]|[ \u00a0](?:million|billion|trillion|thousand|bn|mn|mln|tn))(?!\w))"
_CODES = r"USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|CNY|RMB|HKD|SGD|INR|SEK|NOK|DKK|ZAR|BRL|RUB|KRW|MXN|PLN|TRY"
_CURRENCY_WORDS = (
    r"dollars?|euros?|pounds?(?:[ ]sterling)?|sterling|yen|yuan|renminbi|francs?|rupees?|kronor"
    r"|kronur|krona|kroner|reais|roubles?|rubles?|" + _CODES
)
_SYMBOLS = r"(?:US|A|C|HK|NZ|S|R)?\$|[€£¥₹₩₽]"

_RECOGNISERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "TICKER",
        re.compile(
            rf"(?<![\w$])\$[A-Z]{{1,6}}(?:\.[A-Z]{{1,2}})?(?![\w$])"
            rf"|(?<![\w:])(?:{_EXCHANGES})[ \u00a0]?:[ \u00a0]?[A-Z0-9]{{1,6}}(?:[.\-][A-Z0-9]{{1,3}})?(?![\w])"
        ),
    ),
    (
        "MONEY",
        re.compile(
            rf"(?<![\w$€£¥₹₩₽])(?:{_SYMBOLS})[ \u00a0]?{_NUM}{_SCALE}?(?![0-9])"
            rf"|(?<![\w])(?:{_CODES})[ \u00a0]?{_NUM}{_SCALE}?(?![0-9])"
            rf"|(?<![\w.,])(?:{_NUM}{_SCALE}?[ \u00a0](?:{_CURRENCY_WORDS})|{_NUM}{_SCALE}?[ \u00a0]?[€£])(?![\w])"
        ),
    ),
    (
        "PERCENT",
        re.compile(
            rf"(?:(?<![\w.,\-+−])[\-+−](?=[0-9])|(?<![\w.,])){_NUM}[ \u00a0]?"
            r"(?:%|(?:percent|per[ ]cent|pct|percentage[ ]points?)(?![\w]))"
        ),
    ),
    (
        "EMAIL",
        re.compile(
            r"(?<![\w.%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
            r"(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![\w\-])"
        ),
    ),
    ("URL", re.compile(r"(?<![\w@./])(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)[^\s<>\"'`{}|\\^]+")),
)

_TRAILING = ".,;:!?'\""
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _trim_url(text: str, start: int, end: int) -> int:
    """Drop trailing sentence punctuation and unbalanced closing brackets from a URL."""
    closes = {c: text.count(c, start, end) for c in _CLOSERS}
    opens = {o: text.count(o, start, end) for o in _CLOSERS.values()}
    while end > start:
        last = text[end - 1]
        unbalanced = last in _CLOSERS and closes[last] > opens[_CLOSERS[last]]
        if last not in _TRAILING and not unbalanced:
            break
        if last in closes:
            closes[last] -= 1
        end -= 1
    return end


def _candidates(text: str) -> list[tuple[int, int, int, str]]:
    found: list[tuple[int, int, int, str]] = []
    for rank, (label, pattern) in enumerate(_RECOGNISERS):
        for m in pattern.finditer(text):
            start, end = m.span()
            if label == "URL":
                end = _trim_url(text, start, end)
                if not any(ch.isalnum() for ch in text[m.end("scheme") : end]):
                    continue
            found.append((start, end, rank, label))
    return found


def find_patterns(text: str) -> list[PatternMatch]:
    """All recognised spans in ``text``, sorted by start and non-overlapping."""
    candidates = sorted(_candidates(text), key=lambda c: (c[0] - c[1], c[0], c[2]))
    starts: list[int] = []
    ends: list[int] = []
    chosen: list[tuple[int, int, str]] = []
    for start, end, _, label in candidates:
        i = bisect.bisect_right(starts, start)
        if i > 0 and ends[i - 1] > start:
            continue
        if i < len(starts) and starts[i] < end:
            continue
        starts.insert(i, start)
        ends.insert(i, end)
        chosen.insert(i, (start, end, label))
    return [PatternMatch(s, e, label, text[s:e]) for s, e, label in chosen]
