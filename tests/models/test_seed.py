"""Beacon's bundled seed data (``models/seed/*.jsonl``): well-formed, balanced, readable.

Checked twice: line by line with plain ``json`` (offsets, labels, word boundaries) and through
the real reader ``models.data.read_source("jsonl:" + path)``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import models
from models.words import split_words

SEED_DIR = Path(models.__file__).parent / "seed"
LABELS = {"PER", "ORG", "LOC", "MISC"}
SENTIMENTS = {"negative", "neutral", "positive"}
MIN_EXAMPLES = 400
MIN_SENTIMENT_SHARE = 0.20


def _seed_files() -> list[Path]:
    return sorted(SEED_DIR.glob("*.jsonl"))


def _records() -> list[tuple[str, dict[str, Any]]]:
    """Every seed line as ``("file:line", record)``."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in _seed_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            assert line.strip(), f"{path.name}:{number}: blank line"
            out.append((f"{path.name}:{number}", json.loads(line)))
    return out


def _check_entities(where: str, text: str, entities: list[dict[str, Any]]) -> None:
    words = split_words(text)
    starts = {s for s, _ in words}
    ends = {e for _, e in words}
    previous_end = 0
    for ent in entities:
        assert set(ent) == {"start", "end", "label"}, f"{where}: entity keys {sorted(ent)}"
        start, end, label = ent["start"], ent["end"], ent["label"]
        assert isinstance(start, int) and isinstance(end, int), where
        assert previous_end <= start < end <= len(text), f"{where}: bad/overlapping span {ent}"
        previous_end = end
        span = text[start:end]
        assert label in LABELS, f"{where}: label {label!r}"
        assert span == span.strip() and span, f"{where}: span {span!r} not stripped"
        assert span[0].isalnum() and span[-1].isalnum(), f"{where}: span {span!r} has edge punctuation"
        assert start in starts and end in ends, f"{where}: span {span!r} cuts a word"
        assert not any(c in span for c in "@$%€£/"), f"{where}: pattern text labelled as entity {span!r}"


def test_seed_files_present() -> None:
    names = {p.name for p in _seed_files()}
    assert {"support.jsonl", "finance.jsonl"} <= names


def test_every_line_is_well_formed() -> None:
    records = _records()
    assert records
    for where, rec in records:
        assert set(rec) == {"text", "entities", "sentiment"}, f"{where}: keys {sorted(rec)}"
        text = rec["text"]
        assert isinstance(text, str) and text == text.strip() and text, f"{where}: text"
        assert rec["sentiment"] in SENTIMENTS, f"{where}: sentiment {rec['sentiment']!r}"
        assert isinstance(rec["entities"], list), where
        _check_entities(where, text, rec["entities"])


def test_size_balance_and_variety() -> None:
    records = [rec for _, rec in _records()]
    assert len(records) >= MIN_EXAMPLES
    texts = [rec["text"] for rec in records]
    duplicates = [t for t, n in Counter(texts).items() if n > 1]
    assert not duplicates, f"duplicate texts: {duplicates[:3]}"
    assert len({" ".join(t.lower().split()) for t in texts}) == len(texts), "near-duplicate texts"
    sentiments = Counter(rec["sentiment"] for rec in records)
    for name in SENTIMENTS:
        assert sentiments[name] / len(records) >= MIN_SENTIMENT_SHARE, f"{name}: {sentiments}"
    labels = Counter(ent["label"] for rec in records for ent in rec["entities"])
    assert set(labels) == LABELS, labels
    with_entities = sum(1 for rec in records if rec["entities"])
    assert 0.6 <= with_entities / len(records) < 1.0, with_entities


@pytest.mark.parametrize("path", _seed_files(), ids=lambda p: p.name)
def test_read_source_agrees_with_json(path: Path) -> None:
    from models.data import read_source

    examples = list(read_source("jsonl:" + str(path)))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(examples) == len(lines)
    for ex, rec in zip(examples, lines, strict=True):
        assert ex.text == rec["text"]
        assert ex.sentiment == rec["sentiment"]
        assert [ex.text[s:e] for s, e in ex.offsets] == ex.words
        assert ex.tags is not None and len(ex.tags) == len(ex.words)
        assert _spans_from_tags(ex.offsets, ex.tags) == [
            (ent["start"], ent["end"], ent["label"]) for ent in rec["entities"]
        ]


def _spans_from_tags(offsets: list[tuple[int, int]], tags: list[str | None]) -> list[tuple[int, int, str]]:
    """Decode IOB2 word tags back to character spans ``(start, end, label)``."""
    spans: list[tuple[int, int, str]] = []
    for (start, end), tag in zip(offsets, tags, strict=True):
        assert tag is not None
        if tag.startswith("B-"):
            spans.append((start, end, tag[2:]))
        elif tag.startswith("I-"):
            assert spans and spans[-1][2] == tag[2:], f"I- tag without B-: {tag}"
            spans[-1] = (spans[-1][0], end, spans[-1][2])
        else:
            assert tag == "O", tag
    return spans
