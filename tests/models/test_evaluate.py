"""Metrics against hand-computed values (``models.evaluate``)."""

from __future__ import annotations

import json
import random
import warnings

import pytest
import torch
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from torch.nn import functional as F

from models.errors import DataError
from models.evaluate import expected_calibration_error, fit_temperature, ner_report, sentiment_report

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"], ["O"]]
PRED = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"], ["B-LOC"]]


def test_ner_report_hand_computed() -> None:
    # gold: PER, LOC, ORG (3); pred: PER, ORG, ORG, LOC (4); correct: PER, ORG (2)
    report = ner_report(GOLD, PRED)
    assert report == {
        "task": "ner",
        "precision": 0.5,
        "recall": 0.666667,
        "f1": 0.571429,  # 4/7
        "per_type": {
            "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
            "ORG": {"precision": 0.5, "recall": 1.0, "f1": 0.666667, "support": 1},
            "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
        },
        "n": 3,
    }
    assert json.dumps(report) == json.dumps(ner_report(GOLD, PRED))


def test_ner_report_is_strict_iob2() -> None:
    # a stray I- is not an entity in strict mode; a type change inside a span breaks it
    report = ner_report([["B-PER", "I-PER"], ["B-ORG", "I-ORG"]], [["I-PER", "I-PER"], ["B-ORG", "I-LOC"]])
    assert report["precision"] == 0.0 and report["recall"] == 0.0 and report["f1"] == 0.0
    assert report["per_type"]["ORG"]["support"] == 1


def test_ner_report_matches_seqeval_classification_report() -> None:
    rng = random.Random(3)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-creative-work", "I-creative-work"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(60)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in sent] for sent in gold]
    expected = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    report = ner_report(gold, pred)
    assert report["f1"] == round(float(expected["micro avg"]["f1-score"]), 6)
    assert report["precision"] == round(float(expected["micro avg"]["precision"]), 6)
    for kind, scores in report["per_type"].items():
        assert scores["f1"] == round(float(expected[kind]["f1-score"]), 6)
        assert scores["support"] == int(expected[kind]["support"])


@pytest.mark.parametrize(("gold", "pred"), [([], []), ([[]], [[]]), ([["O", "O"]], [["O", "O"]])])
def test_ner_report_empty_and_no_entities(gold: list[list[str]], pred: list[list[str]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = ner_report(gold, pred)
    assert report["f1"] == report["precision"] == report["recall"] == 0.0
    assert report["per_type"] == {}
    assert report["n"] == len(gold)


def test_ner_report_rejects_mismatch() -> None:
    with pytest.raises(DataError, match="sentence 0"):
        ner_report([["O", "O"]], [["O"]])
    with pytest.raises(DataError):
        ner_report([["O"]], [])
    with pytest.raises(DataError, match="X-1"):
        ner_report([["X-1"]], [["O"]])


# ---------------------------------------------------------------- sentiment and calibration

S_GOLD = ["positive", "negative", "neutral", "neutral", "positive"]
S_PRED = ["positive", "neutral", "neutral", "negative", "positive"]
S_PROBS = [
    [0.1, 0.2, 0.7],  # correct, confidence .7
    [0.3, 0.6, 0.1],  # wrong, .6
    [0.2, 0.5, 0.3],  # correct, .5
    [0.9, 0.05, 0.05],  # wrong, .9
    [0.0, 0.05, 0.95],  # correct, .95
]


def test_sentiment_report_hand_computed() -> None:
    report = sentiment_report(S_GOLD, S_PRED, S_PROBS)
    assert report["task"] == "sentiment"
    assert report["n"] == 5
    assert report["accuracy"] == 0.6
    assert report["macro_f1"] == 0.5  # F1 negative 0, neutral .5, positive 1
    assert report["confusion"] == {
        "labels": ["negative", "neutral", "positive"],
        "matrix": [[0, 1, 0], [1, 1, 0], [0, 0, 2]],  # rows gold, columns predicted
    }
    assert report["ece"] == 0.47  # each in its own bin: (.3 + .6 + .5 + .9 + .05) / 5


def test_ece_shared_bins() -> None:
    gold_idx = [2, 0, 1, 1, 2]
    # bins (0, .5] and (.5, 1]: |1 - .5| * 1 + |.5 - .7875| * 4, over 5
    assert expected_calibration_error(S_PROBS, gold_idx, n_bins=2) == pytest.approx(0.33)
    assert expected_calibration_error([], [], n_bins=15) == 0.0
    assert expected_calibration_error([[0.25, 0.75]] * 4, [1, 1, 1, 0], n_bins=10) == pytest.approx(0.0)
    with pytest.raises(DataError):
        expected_calibration_error([[0.5, 0.5]], [])


def test_sentiment_report_macro_f1_ignores_absent_classes() -> None:
    report = sentiment_report(["positive", "neutral"], ["positive", "neutral"], [[0, 0, 1], [0, 1, 0]])
    assert report["macro_f1"] == 1.0 and report["accuracy"] == 1.0 and report["ece"] == 0.0


def test_sentiment_report_empty_and_errors() -> None:
    empty = sentiment_report([], [], [])
    assert empty["accuracy"] == 0.0 and empty["macro_f1"] == 0.0 and empty["n"] == 0
    assert empty["confusion"]["matrix"] == [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(DataError, match="happy"):
        sentiment_report(["happy"], ["neutral"], [[0.2, 0.6, 0.2]])
    with pytest.raises(DataError, match="lengths"):
        sentiment_report(["neutral"], ["neutral", "neutral"], [[0.2, 0.6, 0.2]])
    with pytest.raises(DataError, match="3 values"):
        sentiment_report(["neutral"], ["neutral"], [[0.4, 0.6]])


# ---------------------------------------------------------------- temperature scaling


def _overconfident(n: int = 3000, classes: int = 3, scale: float = 4.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(z) (so T=1 is calibrated for z); returns (scale * z, labels)."""
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(n, classes, generator=generator) * 1.5
    labels = torch.multinomial(F.softmax(z, dim=-1), 1, generator=generator).squeeze(1)
    return z * scale, labels


def test_fit_temperature_lowers_nll_on_overconfident_logits() -> None:
    logits, labels = _overconfident()
    temperature = fit_temperature(logits, labels)
    assert 3.0 < temperature < 5.5  # the logits were scaled by 4
    before = F.cross_entropy(logits, labels).item()
    after = F.cross_entropy(logits / temperature, labels).item()
    assert after < before - 0.1
    for other in (temperature * 0.8, temperature * 1.25):  # a (local) optimum
        assert F.cross_entropy(logits / other, labels).item() > after


def test_fit_temperature_ignores_masked_positions_and_3d() -> None:
    logits, labels = _overconfident(n=1200)
    expected = fit_temperature(logits, labels)
    noisy_logits = torch.cat([logits, torch.randn(300, 3) * 50])
    noisy_labels = torch.cat([labels, torch.full((300,), -100)])
    assert fit_temperature(noisy_logits, noisy_labels) == pytest.approx(expected, rel=1e-4)
    token_logits, token_labels = noisy_logits.reshape(30, 50, 3), noisy_labels.reshape(30, 50)
    assert fit_temperature(token_logits, token_labels) == pytest.approx(expected, rel=1e-4)


def test_fit_temperature_clamps_and_defaults() -> None:
    labels = torch.tensor([0, 1, 2, 0] * 10)
    right, wrong = F.one_hot(labels, 3).float(), F.one_hot((labels + 1) % 3, 3).float()
    assert fit_temperature(right * 0.01, labels) == 0.05  # always right: T → 0, clamped
    assert fit_temperature(wrong * 10, labels) == 20.0  # always wrong: T → ∞, clamped
    sharp = fit_temperature(right * 10, labels)  # NLL flat near 0 below T≈0.5: any T < 1 is optimal
    assert 0.05 <= sharp < 1.0
    assert F.cross_entropy(right * 10 / sharp, labels) < F.cross_entropy(right * 10, labels)
    assert fit_temperature(torch.randn(4, 3), torch.full((4,), -100)) == 1.0
    with torch.inference_mode():
        logits, labels = _overconfident(n=500)
        assert fit_temperature(logits, labels) > 1.5
    with pytest.raises(DataError):
        fit_temperature(torch.randn(4, 3), torch.tensor([0, 1, 3, 0]))
    with pytest.raises(DataError):
        fit_temperature(torch.randn(4, 3), torch.tensor([0, 1, 2]))
