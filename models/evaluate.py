"""Metrics: entity-level NER scores (seqeval, strict IOB2), sentiment accuracy/F1/ECE, temperature.

Reports are plain dicts of rounded floats (6 places) so that two runs on the same predictions
give byte-identical JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from seqeval.scheme import IOB2, Entities
from torch.nn import functional as F

from models.data import SENTIMENTS
from models.errors import DataError
from models.labels import IGNORE_INDEX, is_valid_tag

_DIGITS = 6
T_MIN, T_MAX = 0.05, 20.0


def _r(x: float) -> float:
    return round(float(x), _DIGITS)


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall, F1; 0.0 where a denominator is 0."""
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _entities(seqs: Sequence[Sequence[str]]) -> set[tuple[int, str, int, int]]:
    """Strict IOB2 entities ``(sentence, type, start, end)``; an ``I-`` without its ``B-`` is none."""
    if not any(seqs):
        return set()
    found = Entities([list(s) for s in seqs], IOB2, suffix=False)
    return {entity.to_tuple() for sentence in found.entities for entity in sentence}


def _check_tags(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(pred):
        raise DataError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise DataError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        bad = [t for t in (*g, *p) if not is_valid_tag(t)]
        if bad:
            raise DataError(f"sentence {i}: invalid tag {bad[0]!r}")


def ner_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entity-level micro precision/recall/F1 (seqeval strict, IOB2) and per-type scores."""
    _check_tags(gold, pred)
    true, guess = _entities(gold), _entities(pred)
    per_type: dict[str, dict[str, float | int]] = {}
    for kind in sorted({e[1] for e in true | guess}):
        t = {e for e in true if e[1] == kind}
        g = {e for e in guess if e[1] == kind}
        p, r, f = _prf(len(t & g), len(g), len(t))
        per_type[kind] = {"precision": _r(p), "recall": _r(r), "f1": _r(f), "support": len(t)}
    p, r, f = _prf(len(true & guess), len(guess), len(true))
    return {
        "task": "ner",
        "f1": _r(f),
        "precision": _r(p),
        "recall": _r(r),
        "per_type": per_type,
        "n": len(gold),
    }


def expected_calibration_error(probs: Sequence[Sequence[float]], gold_idx: Sequence[int], n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width confidence bins ``(lo, hi]`` (confidence 0 in the first).

    Confidence is the top probability; a prediction is correct when its arg-max is the gold index.
    """
    if len(probs) != len(gold_idx):
        raise DataError(f"{len(probs)} probability rows but {len(gold_idx)} gold labels")
    if n_bins < 1:
        raise DataError(f"n_bins must be >= 1, got {n_bins}")
    if not probs:
        return 0.0
    counts = [0] * n_bins
    conf_sum = [0.0] * n_bins
    hits = [0] * n_bins
    for row, gold in zip(probs, gold_idx, strict=True):
        values = [float(v) for v in row]
        conf = max(values)
        b = min(max(math.ceil(conf * n_bins) - 1, 0), n_bins - 1)
        counts[b] += 1
        conf_sum[b] += conf
        hits[b] += int(values.index(conf) == int(gold))
    total = len(probs)
    return sum(abs(hits[b] - conf_sum[b]) / total for b in range(n_bins) if counts[b])


def _confusion(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    index = {label: i for i, label in enumerate(labels)}
    for value in (*gold, *pred):
        if value not in index:
            raise DataError(f"sentiment label {value!r} is not one of {list(labels)}")
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred, strict=True):
        matrix[index[g]][index[p]] += 1
    return matrix


def sentiment_report(
    gold: Sequence[str],
    pred: Sequence[str],
    probs: Sequence[Sequence[float]],
    labels: Sequence[str] = SENTIMENTS,
) -> dict[str, Any]:
    """Accuracy, macro F1 (over the classes present in gold or pred), confusion (rows gold), ECE."""
    if not len(gold) == len(pred) == len(probs):
        raise DataError(f"lengths differ: {len(gold)} gold, {len(pred)} pred, {len(probs)} probs")
    if any(len(row) != len(labels) for row in probs):
        raise DataError(f"every probability row needs {len(labels)} values ({list(labels)})")
    matrix = _confusion(gold, pred, labels)
    n = len(gold)
    f1s = []
    for i in range(len(labels)):
        n_gold, n_pred = sum(matrix[i]), sum(row[i] for row in matrix)
        if n_gold or n_pred:
            f1s.append(_prf(matrix[i][i], n_pred, n_gold)[2])
    index = {label: i for i, label in enumerate(labels)}
    return {
        "task": "sentiment",
        "accuracy": _r(sum(matrix[i][i] for i in range(len(labels))) / n if n else 0.0),
        "macro_f1": _r(sum(f1s) / len(f1s) if f1s else 0.0),
        "confusion": {"labels": list(labels), "matrix": matrix},
        "ece": _r(expected_calibration_error(probs, [index[g] for g in gold])),
        "n": n,
    }


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)`` (LBFGS on log T).

    ``logits`` is ``[..., C]`` and ``labels`` the matching ``[...]``; labels equal to
    :data:`~models.labels.IGNORE_INDEX` are skipped. The result is clamped to [0.05, 20];
    with nothing to fit it is 1.0.
    """
    if logits.dim() < 2 or tuple(logits.shape[:-1]) != tuple(labels.shape):
        raise DataError(f"logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
    with torch.inference_mode(False), torch.enable_grad():
        x = logits.detach().clone().to(torch.float64).reshape(-1, logits.shape[-1])
        y = labels.detach().clone().reshape(-1).long()
        keep = y != IGNORE_INDEX
        x, y = x[keep], y[keep]
        if y.numel() == 0:
            return 1.0
        if int(y.min()) < 0 or int(y.max()) >= x.shape[1]:
            raise DataError(f"labels must be in [0, {x.shape[1]}) or {IGNORE_INDEX}")
        log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(x / log_t.exp(), y)
            loss.backward()
            return loss

        optimizer.step(closure)
        temperature = float(log_t.detach().exp())
    if not math.isfinite(temperature):
        return 1.0
    return min(max(temperature, T_MIN), T_MAX)
