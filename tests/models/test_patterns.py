"""Rule-based recognisers (``models.patterns``): tickers, money, percentages, e-mails, URLs."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.patterns import PatternMatch, find_patterns


def found(text: str) -> list[tuple[str, str]]:
    matches = find_patterns(text)
    for m in matches:
        assert text[m.start : m.end] == m.text
    return [(m.label, m.text) for m in matches]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Buy $AAPL now", [("TICKER", "$AAPL")]),
        ("$BRK.B and $brk", [("TICKER", "$BRK.B")]),
        ("IBM (NYSE: IBM) rose", [("TICKER", "NYSE: IBM")]),
        ("listed as NASDAQ:AAPL.", [("TICKER", "NASDAQ:AAPL")]),
        ("Nasdaq: MSFT, TSX: RY", [("TICKER", "Nasdaq: MSFT"), ("TICKER", "TSX: RY")]),
    ],
)
def test_tickers(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("revenue of $1.2bn", [("MONEY", "$1.2bn")]),
        ("a €30 million deal", [("MONEY", "€30 million")]),
        ("costs $5.", [("MONEY", "$5")]),
        ("£1,200.50 each", [("MONEY", "£1,200.50")]),
        ("USD 3m in cash", [("MONEY", "USD 3m")]),
        ("paid 30 million euros", [("MONEY", "30 million euros")]),
        ("EUR 13.1 mn from EUR 8.7 mn", [("MONEY", "EUR 13.1 mn"), ("MONEY", "EUR 8.7 mn")]),
        ("US$5m and HK$ 10 bn", [("MONEY", "US$5m"), ("MONEY", "HK$ 10 bn")]),
    ],
)
def test_money(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("up 5% today", [("PERCENT", "5%")]),
        ("grew 3.5 percent", [("PERCENT", "3.5 percent")]),
        ("fell -2.1%.", [("PERCENT", "-2.1%")]),
        ("by 17 % .", [("PERCENT", "17 %")]),
        ("a 3-5% range", [("PERCENT", "5%")]),
    ],
)
def test_percent(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail john.doe+x@example.co.uk.", [("EMAIL", "john.doe+x@example.co.uk")]),
        ("see https://example.com/a_(b)).", [("URL", "https://example.com/a_(b)")]),
        ("(www.acme.org/ir?q=1), ok", [("URL", "www.acme.org/ir?q=1")]),
        ("HTTP://X.COM/Path", [("URL", "HTTP://X.COM/Path")]),
        # longest wins: the e-mail inside the URL and the cashtag in its path are not reported
        ("https://user@host.com/$AAPL", [("URL", "https://user@host.com/$AAPL")]),
    ],
)
def test_email_and_url(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the $ sign alone",
        "$US5 million",  # neither a ticker nor (without a known prefix) money
        "price 12.5 and version 3.1",
        "5 real problems, 3 won games",
        "name@localhost and @handle and a@b",
        "http:// and www. alone",
        "SHE: WENT HOME",
    ],
)
def test_negatives(text: str) -> None:
    assert find_patterns(text) == []


def test_percent_inside_words_or_numbers_not_found() -> None:
    assert found("B5% x5.5% 1.5.5% v2,5%") == []
    assert found("Q3-5%") == [("PERCENT", "5%")]


def test_matches_are_sorted_and_frozen() -> None:
    matches = find_patterns("$AAPL +3% to $190; mail ir@apple.com")
    assert [m.label for m in matches] == ["TICKER", "PERCENT", "MONEY", "EMAIL"]
    assert matches[1] == PatternMatch(6, 9, "PERCENT", "+3%")
    with pytest.raises(AttributeError):
        matches[0].start = 1  # type: ignore[misc]


FRAGMENTS = [*"$€£%@.:,/()-+ 0123456789AAPLNYSEusdeurwhtps", "www.", "http://", "NYSE: ", " million", " euros"]
PATTERNY = st.lists(st.one_of(st.characters(), st.sampled_from(FRAGMENTS)), max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(PATTERNY)
def test_matches_are_exact_sorted_slices(text: str) -> None:
    matches = find_patterns(text)
    previous_end = 0
    for m in matches:
        assert previous_end <= m.start < m.end <= len(text)
        assert text[m.start : m.end] == m.text
        assert m.label in {"TICKER", "MONEY", "PERCENT", "EMAIL", "URL"}
        previous_end = m.end


HOSTILE = {
    "letters": "a" * 40000,
    "digits": "1" * 40000,
    "thousands": "1," * 20000,
    "decimals": "1." * 20000,
    "local parts": "a." * 20000 + "@",
    "ats": "a@" * 20000,
    "domains": "a@" + "b." * 20000,
    "www": "www." * 10000,
    "schemes": "http://" * 6000,
    "closers": "http://a" + ")" * 40000,
    "dollars": "$" * 40000,
    "cashtags": "$A" * 20000,
    "exchanges": "NYSE: " * 7000,
    "numbers": "5 " * 20000,
    "signs": "-" * 40000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_linear_time_on_hostile_input(name: str) -> None:
    started = time.perf_counter()
    find_patterns(HOSTILE[name])
    assert time.perf_counter() - started < 1.0


def test_fast_on_random_unicode() -> None:
    rng = random.Random(17)
    text = "".join(chr(rng.randrange(0x20, 0x2FFFF)) for _ in range(40000))
    text += "".join(rng.choice("aA1$.,@:%- /()\n€w") for _ in range(40000))
    started = time.perf_counter()
    matches = find_patterns(text)
    assert time.perf_counter() - started < 1.0
    assert all(text[m.start : m.end] == m.text for m in matches)
