from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.analyze import Analysis, Analyzer, Entity, merge_entities
from models.data import split_words
from models.patterns import PatternMatch
from models.scoring import evaluate_examples
from tests.models.tiny import synthetic_examples, train_tiny_artifact


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    path = train_tiny_artifact(tmp_path_factory.mktemp("analyze"), epochs=10)
    return Analyzer.load(path, "cpu", precision="fp32")


def _check(analysis: Analysis, text: str) -> None:
    assert analysis.text == text
    assert analysis.sentiment.label in ("negative", "neutral", "positive")
    assert sum(analysis.sentiment.probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert 0.0 <= analysis.sentiment.score <= 1.0
    for e in analysis.entities:
        assert 0 <= e.start < e.end <= len(text)
        assert text[e.start : e.end] == e.text
        assert e.source in ("model", "pattern") and 0.0 <= e.score <= 1.0


def test_entities_and_sentiment(analyzer: Analyzer) -> None:
    text = "Alice visited Paris and Acme"
    (a,) = analyzer.analyze([text])
    _check(a, text)
    assert [(e.text, e.label) for e in a.entities] == [("Alice", "PER"), ("Paris", "LOC"), ("Acme", "ORG")]
    assert a.model_version == analyzer.version
    (bad,) = analyzer.analyze(["the report was terrible today"])
    assert bad.sentiment.label == "negative"


def test_long_text_uses_windows_without_truncation(analyzer: Analyzer) -> None:
    filler = "the report was okay today . "
    head = "Bob met Carol in London . "
    tail = "Alice visited Berlin and Globex"
    text = head + filler * ((40_000 - len(head) - len(tail)) // len(filler)) + tail
    assert len(text) > 39_000
    words = [text[s:e] for s, e in split_words(text)]
    windows = analyzer.predictor.windows([words])
    assert len(windows) > 100  # max_length 32: many windows
    (doc,) = analyzer.predictor.predict([words])
    assert all(doc.has_token)  # every word predicted: nothing truncated
    (a,) = analyzer.analyze([text])
    _check(a, text)
    found = {(e.text, e.label, e.start) for e in a.entities}
    assert ("Bob", "PER", 0) in found
    assert ("Alice", "PER", len(text) - len(tail)) in found
    assert ("Globex", "ORG", len(text) - len("Globex")) in found
    assert ("Berlin", "LOC", text.rindex("Berlin")) in found


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "😀", "😀🎉👍🏽", "\u200b", "👩‍👩‍👧"])
def test_empty_and_symbol_texts(analyzer: Analyzer, text: str) -> None:
    (a,) = analyzer.analyze([text])
    _check(a, text)
    assert a.entities == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=120))
def test_offsets_exact_on_random_unicode(analyzer: Analyzer, text: str) -> None:
    (a,) = analyzer.analyze([text])
    _check(a, text)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["Alice", "visited", "Paris", "Zürich", "😀", "ﬁnance", "İstanbul", "x"]),
                max_size=30))
def test_offsets_exact_on_tricky_words(analyzer: Analyzer, words: list[str]) -> None:
    text = " ".join(words)
    (a,) = analyzer.analyze([text])
    _check(a, text)


def test_patterns_are_merged(analyzer: Analyzer) -> None:
    text = "Bob sold $ACME for $5 million, see https://acme.example.com today"
    (a,) = analyzer.analyze([text])
    _check(a, text)
    pattern = {(e.text, e.label) for e in a.entities if e.source == "pattern"}
    assert {("$ACME", "TICKER"), ("$5 million", "MONEY"), ("https://acme.example.com", "URL")} <= pattern
    assert ("Bob", "PER") in {(e.text, e.label) for e in a.entities if e.source == "model"}
    assert [e.start for e in a.entities] == sorted(e.start for e in a.entities)


def test_merge_rules() -> None:
    model = [
        Entity("Acme", "ORG", 1, 5, 0.9, "model"),  # same span as a ticker: both kept
        Entity("5", "MISC", 12, 13, 0.6, "model"),  # inside MONEY: dropped
        Entity("Bob", "PER", 20, 23, 0.9, "model"),
    ]
    matches = [
        PatternMatch(1, 5, "TICKER", "Acme"),
        PatternMatch(11, 21, "MONEY", "$5 million"),  # overlaps Bob only partly: Bob stays
        PatternMatch(11, 21, "MONEY", "$5 million"),  # exact duplicate
    ]
    merged = merge_entities(model, matches)
    assert [(e.label, e.start, e.end) for e in merged] == [
        ("TICKER", 1, 5), ("ORG", 1, 5), ("MONEY", 11, 21), ("PER", 20, 23),
    ]


def test_batch_order_preserved_and_batching_invariant(analyzer: Analyzer) -> None:
    texts = [ex.text for ex in synthetic_examples(40, seed=7)] + ["", "Alice " * 60]
    together = analyzer.analyze(texts, batch_size=8)
    alone = [analyzer.analyze([t])[0] for t in texts]
    for a, b, text in zip(together, alone, texts, strict=True):
        assert a.text == b.text == text
        assert [(e.start, e.end, e.label) for e in a.entities] == [(e.start, e.end, e.label) for e in b.entities]
        assert a.sentiment.label == b.sentiment.label
        for k, v in a.sentiment.probs.items():
            assert v == pytest.approx(b.sentiment.probs[k], abs=1e-4)


def test_concurrent_analyze_is_safe(analyzer: Analyzer) -> None:
    texts = [ex.text for ex in synthetic_examples(30, seed=3)]

    def spans(results: list[Analysis]) -> list[list[tuple[int, int, str]]]:
        return [[(e.start, e.end, e.label) for e in a.entities] for a in results]

    expected = spans(analyzer.analyze(texts))
    results: list[list[list[tuple[int, int, str]]]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(spans(analyzer.analyze(texts)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [expected] * 4


def test_explain_gives_signed_weights_over_words(analyzer: Analyzer) -> None:
    text = "the report was terrible today"
    ex = analyzer.explain(text, top_k=10, steps=48)
    (a,) = analyzer.analyze([text])
    assert ex.label == a.sentiment.label == "negative"
    spans = split_words(text)
    assert len(ex.words) == len(spans)
    for w in ex.words:
        assert text[w.start : w.end] == w.word and (w.start, w.end) in spans
    weights = [w.weight for w in ex.words]
    assert weights == sorted(weights, key=abs, reverse=True)
    assert ex.words[0].word == "terrible" and ex.words[0].weight > 0
    assert sum(weights) == pytest.approx(ex.delta, abs=0.05 + 0.05 * abs(ex.delta))  # completeness
    assert len(analyzer.explain(text, top_k=2).words) == 2
    empty = analyzer.explain("", top_k=5)
    assert empty.words == [] and empty.label in analyzer.sentiment_labels


def test_evaluate_examples_reports_both_tasks_deterministically(analyzer: Analyzer, tmp_path: Path) -> None:
    examples = synthetic_examples(30, seed=11)
    first = evaluate_examples(analyzer, examples)
    assert first == evaluate_examples(analyzer, examples)
    assert first["task"] == "ner" and first["f1"] > 0.9
    assert first["sentiment"]["task"] == "sentiment" and first["sentiment"]["n"] == 10
    only_sentiment = [ex for ex in examples if ex.tags is None]
    assert evaluate_examples(analyzer, only_sentiment)["task"] == "sentiment"
    assert analyzer.predict_words([["Alice", "visited", "Paris"]]) == [["B-PER", "O", "B-LOC"]]
    assert analyzer.labels[0] == "O" and analyzer.metrics["dev"]
