"""The champion/challenger gate, metric diffs and prediction drift. Pure functions, plus one query.

Reports are ``models.scoring.report_for`` dicts (NER ``f1``, sentiment ``accuracy``...). The gate
promotes a candidate only if, on every base dev set, each of its task scores is no worse than the
active model's by more than ``tolerance`` POINTS (0.5 = half a point of F1 or accuracy), AND on the
feedback test set its score is at least as good. The feedback score is the mean of its NER F1,
its sentiment accuracy and the share of 👎-rejected sentiments it avoids (what the set has).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.tables import Prediction, utcnow

FEEDBACK = "feedback-test"
EPS = 1e-9


def task_metrics(report: Mapping[str, Any] | None) -> dict[str, float]:
    """``{"ner_f1", "sentiment_accuracy", "rejected_avoided"}``: the ones the report has."""
    if not report:
        return {}
    out: dict[str, float] = {}
    if report.get("task") == "ner":
        if _has_entities(report):
            out["ner_f1"] = float(report["f1"])
        sentiment = report.get("sentiment")
        if isinstance(sentiment, Mapping) and sentiment.get("n"):
            out["sentiment_accuracy"] = float(sentiment["accuracy"])
    elif report.get("task") == "sentiment" and report.get("n"):
        out["sentiment_accuracy"] = float(report["accuracy"])
    avoided = report.get("rejected")
    if isinstance(avoided, Mapping) and avoided.get("n"):
        out["rejected_avoided"] = float(avoided["avoided"])
    return out


def _has_entities(report: Mapping[str, Any]) -> bool:
    per_type = report.get("per_type") or {}
    return any(int(v.get("support", 0)) for v in per_type.values())


def mean_score(metrics: Mapping[str, float]) -> float | None:
    return sum(metrics.values()) / len(metrics) if metrics else None


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)  # why not (or why yes, when nothing to compare)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": self.reasons, "checks": self.checks}


def gate(
    candidate: Mapping[str, Mapping[str, Any]],
    active: Mapping[str, Mapping[str, Any]] | None,
    *,
    tolerance: float,
    feedback_key: str = FEEDBACK,
) -> GateDecision:
    """Decide on ``candidate`` vs ``active`` reports keyed by data set (``feedback_key``: the feedback test)."""
    if active is None:
        return GateDecision(True, ["no active model to compare with"])
    decision = GateDecision(True)
    for name in sorted(k for k in candidate if k != feedback_key):
        cand, champ = task_metrics(candidate[name]), task_metrics(active.get(name))
        for metric in sorted(set(cand) & set(champ)):
            delta = (cand[metric] - champ[metric]) * 100
            ok = delta >= -tolerance - EPS
            decision.checks.append({"set": name, "metric": metric, "candidate": cand[metric],
                                    "active": champ[metric], "delta_points": round(delta, 3), "ok": ok})
            if not ok:
                decision.promote = False
                decision.reasons.append(
                    f"{name}: {metric} fell {-delta:.2f} points (tolerance {tolerance:g})")
    cand_fb = mean_score(task_metrics(candidate.get(feedback_key)))
    champ_fb = mean_score(task_metrics(active.get(feedback_key)))
    if cand_fb is not None and champ_fb is not None:
        ok = cand_fb >= champ_fb - EPS
        decision.checks.append({"set": feedback_key, "metric": "score", "candidate": cand_fb, "active": champ_fb,
                                "delta_points": round((cand_fb - champ_fb) * 100, 3), "ok": ok})
        if not ok:
            decision.promote = False
            decision.reasons.append(
                f"{feedback_key}: score {cand_fb * 100:.2f} < active {champ_fb * 100:.2f}")
    return decision


def diff_rows(
    candidate: Mapping[str, Mapping[str, Any]], active: Mapping[str, Mapping[str, Any]] | None
) -> list[tuple[str, str, float | None, float | None]]:
    """``(set, metric, active, candidate)`` rows for every metric either model has, sorted."""
    rows: list[tuple[str, str, float | None, float | None]] = []
    for name in sorted(set(candidate) | set(active or {})):
        cand = task_metrics(candidate.get(name))
        champ = task_metrics((active or {}).get(name))
        for metric in sorted(set(cand) | set(champ)):
            rows.append((name, metric, champ.get(metric), cand.get(metric)))
    return rows


# ------------------------------------------------------------------ drift


@dataclass
class WeekStats:
    n: int
    mix: dict[str, float]  # sentiment label → share
    confidence: float | None  # mean sentiment score


@dataclass
class Drift:
    current: WeekStats
    previous: WeekStats
    shifts: dict[str, float]  # label → change of share (this week − last week)
    confidence_shift: float | None
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": vars(self.current), "previous": vars(self.previous), "shifts": self.shifts,
            "confidence_shift": self.confidence_shift, "warnings": self.warnings,
        }


def week_stats(labels: list[str], scores: list[float]) -> WeekStats:
    counts = Counter(labels)
    n = len(labels)
    return WeekStats(n, {k: v / n for k, v in sorted(counts.items())} if n else {},
                     sum(scores) / len(scores) if scores else None)


def compare_weeks(current: WeekStats, previous: WeekStats, threshold: float) -> Drift:
    """Shifts in prediction mix and mean confidence; a warning for each beyond ``threshold``."""
    shifts: dict[str, float] = {}
    warnings: list[str] = []
    if current.n and previous.n:
        for label in sorted(set(current.mix) | set(previous.mix)):
            shift = current.mix.get(label, 0.0) - previous.mix.get(label, 0.0)
            shifts[label] = round(shift, 4)
            if abs(shift) > threshold:
                warnings.append(f"{label} share moved {shift * 100:+.1f} points week on week")
    conf_shift = None
    if current.confidence is not None and previous.confidence is not None:
        conf_shift = round(current.confidence - previous.confidence, 4)
        if abs(conf_shift) > threshold:
            warnings.append(f"mean confidence moved {conf_shift * 100:+.1f} points week on week")
    return Drift(current, previous, shifts, conf_shift, warnings)


def weekly_drift(*, session: Session, threshold: float, now: datetime | None = None) -> Drift:
    """This week's predictions (last 7 days) against the 7 days before."""
    now = now or utcnow()
    weeks = []
    for start, end in ((now - timedelta(days=7), now), (now - timedelta(days=14), now - timedelta(days=7))):
        rows = session.execute(
            select(Prediction.sentiment_label, Prediction.sentiment_score)
            .where(Prediction.created_at >= start, Prediction.created_at < end)
        ).all()
        weeks.append(week_stats([r[0] for r in rows], [float(r[1]) for r in rows]))
    return compare_weeks(weeks[0], weeks[1], threshold)
