"""The retraining report for the ops channel: Block Kit (metric-diff table, drift, Promote/Rollback
buttons) and a PNG (learning curves + sentiment confusion matrix) uploaded with ``files_upload_v2``."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
    TableBlock,
)

from bot.errors import BeaconError
from bot.log import get_logger
from jobs.gate import FEEDBACK, diff_rows

log = get_logger("beacon.retrain")
ACTION_PROMOTE = "beacon_model_promote"
ACTION_ROLLBACK = "beacon_model_rollback"
MAX_TEXT = 2900  # Slack caps a text object at 3,000 characters
MAX_TABLE_ROWS = 99  # 100 rows, header included


@dataclass
class RunReport:
    """Everything the report shows about one run."""

    run_id: int
    status: str  # succeeded | rejected | failed | skipped
    trigger: str
    version: str | None = None
    active_version: str | None = None  # the champion the candidate was compared with
    promoted: bool = False
    forced: bool = False
    device: str | None = None
    seconds: float | None = None
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    candidate: dict[str, dict[str, Any]] = field(default_factory=dict)
    active: dict[str, dict[str, Any]] | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)
    drift: dict[str, Any] | None = None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}"


def _cell(text: str) -> dict[str, str]:
    return {"type": "raw_text", "text": text}


def headline(report: RunReport) -> str:
    what = {
        "succeeded": f"promoted `{report.version}`" + (" (gate overridden with --force)" if report.forced else ""),
        "rejected": f"candidate `{report.version}` rejected by the gate",
        "failed": "failed",
        "skipped": "skipped",
    }[report.status]
    return f"Retraining run #{report.run_id}: {what}"


def metric_table(report: RunReport) -> TableBlock | None:
    rows = diff_rows(report.candidate, report.active)
    if not rows:
        return None
    table = [[_cell("set"), _cell("metric"), _cell("active"), _cell("candidate"), _cell("Δ points")]]
    for name, metric, old, new in rows[:MAX_TABLE_ROWS]:
        delta = "–" if old is None or new is None else f"{(new - old) * 100:+.2f}"
        short = name if len(name) <= 40 else "…" + name[-39:]
        table.append([_cell(short), _cell(metric), _cell(_pct(old)), _cell(_pct(new)), _cell(delta)])
    return TableBlock(rows=table, column_settings=[None, None, {"align": "right"}, {"align": "right"},
                                                   {"align": "right"}])


def drift_text(drift: Mapping[str, Any] | None) -> str | None:
    if not drift:
        return None
    current, previous = drift["current"], drift["previous"]
    mix = ", ".join(f"{k} {v * 100:.0f}%" for k, v in current["mix"].items()) or "no predictions"
    before = ", ".join(f"{k} {v * 100:.0f}%" for k, v in previous["mix"].items()) or "no predictions"
    conf = _pct(current["confidence"]) if current["confidence"] is not None else "–"
    conf_before = _pct(previous["confidence"]) if previous["confidence"] is not None else "–"
    lines = [
        f"*Drift* (last 7 days vs the 7 before): {current['n']} vs {previous['n']} predictions",
        f"mix {mix} (was {before}); mean confidence {conf} (was {conf_before})",
    ]
    lines += [f":warning: {w}" for w in drift.get("warnings", [])]
    return "\n".join(lines)


def buttons(report: RunReport) -> ActionsBlock:
    elements = []
    if report.version and not report.promoted and report.status != "failed":
        elements.append(ButtonElement(
            text="Promote", action_id=ACTION_PROMOTE, value=report.version, style="primary",
            confirm=ConfirmObject(title="Promote this model?", text=f"Make {report.version} the active model.",
                                  confirm="Promote", deny="Cancel"),
        ))
    elements.append(ButtonElement(
        text="Rollback", action_id=ACTION_ROLLBACK, value=report.version or "active", style="danger",
        confirm=ConfirmObject(title="Roll back?", text="Re-activate the model that was active before.",
                              confirm="Roll back", deny="Cancel"),
    ))
    return ActionsBlock(block_id=f"retrain_run_{report.run_id}", elements=elements)


def build_blocks(report: RunReport) -> list[dict[str, Any]]:
    """The report's blocks as plain dicts (≤ 50 blocks, texts ≤ 3,000 characters)."""
    blocks: list[Any] = [HeaderBlock(text=_cut(headline(report).replace("`", ""), 150))]
    facts = [f"*trigger* {report.trigger}", f"*device* {report.device or '–'}"]
    if report.seconds is not None:
        facts.append(f"*time* {report.seconds / 60:.1f} min")
    if report.active_version:
        facts.append(f"*compared with* `{report.active_version}`")
    counts = report.counts
    if counts:
        facts.append(
            f"*data* base {counts.get('base', '–')} · feedback train {counts.get('feedback_train', '–')} · "
            f"feedback test {counts.get('feedback_test', '–')} · new labels {counts.get('new_labels', '–')}"
        )
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_cut("\n".join(facts)))))
    if report.error:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_cut(f"*Error*\n```{_escape(report.error)}```"))))
    if report.reasons:
        reasons = "\n".join(f"• {_escape(r)}" for r in report.reasons)
        title = "Gate overridden" if report.forced else ("Gate" if report.promoted else "Why it was rejected")
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_cut(f"*{title}*\n{reasons}"))))
    table = metric_table(report)
    if table is not None:
        blocks.append(table)
    drift = drift_text(report.drift)
    if drift:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_cut(drift))))
    if report.status != "skipped":
        blocks.append(buttons(report))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Promote and Rollback: admins only.")]))
    return [b.to_dict() for b in blocks]


# ------------------------------------------------------------------ the PNG


def _confusion_source(report: RunReport) -> tuple[str, dict[str, Any]] | None:
    """The candidate's sentiment confusion matrix: feedback test first, else the first dev set with one."""
    names = [FEEDBACK, *sorted(k for k in report.candidate if k != FEEDBACK)]
    for name in names:
        rep = report.candidate.get(name) or {}
        sentiment = rep if rep.get("task") == "sentiment" else rep.get("sentiment")
        if isinstance(sentiment, Mapping) and sentiment.get("n") and "confusion" in sentiment:
            return name, dict(sentiment["confusion"])
    return None


def render_png(report: RunReport) -> bytes:
    """Learning curves (train loss, dev score per epoch) and the sentiment confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    curves, matrix_ax = fig.subplots(1, 2)
    epochs = [p["epoch"] for p in report.curve]
    if epochs:
        curves.plot(epochs, [p["train_loss"] for p in report.curve], marker="o", label="train loss")
        curves.set_xlabel("epoch")
        curves.set_ylabel("train loss")
        scores = [(p["epoch"], p["score"]) for p in report.curve if p.get("score") is not None]
        if scores:
            twin = curves.twinx()
            twin.plot([e for e, _ in scores], [s for _, s in scores], marker="s", color="tab:green", label="dev score")
            twin.set_ylabel("dev score")
    curves.set_title("learning curves")
    source = _confusion_source(report)
    if source is not None:
        name, confusion = source
        labels, matrix = confusion["labels"], confusion["matrix"]
        matrix_ax.imshow(matrix, cmap="Blues")
        matrix_ax.set_xticks(range(len(labels)), labels=labels)
        matrix_ax.set_yticks(range(len(labels)), labels=labels)
        matrix_ax.set_xlabel("predicted")
        matrix_ax.set_ylabel("gold")
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                matrix_ax.text(j, i, str(value), ha="center", va="center")
        matrix_ax.set_title(_cut(f"sentiment confusion: {name}", 60), fontsize=9)
    else:
        matrix_ax.axis("off")
        matrix_ax.text(0.5, 0.5, "no sentiment evaluation", ha="center", va="center")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# ------------------------------------------------------------------ posting


def upload_png(poster: Any, *, channel: str, png: bytes, filename: str, title: str, thread_ts: str | None) -> bool:
    """Upload with ``files_upload_v2`` through the poster's Slack client; False when it has none."""
    upload = getattr(poster, "upload_file", None)
    if callable(upload):
        upload(channel=channel, content=png, filename=filename, title=title, thread_ts=thread_ts)
        return True
    gateway = getattr(poster, "gateway", None)
    if gateway is not None and hasattr(gateway, "call"):
        args: dict[str, Any] = {"channel": channel, "file": png, "filename": filename, "title": title}
        if thread_ts:
            args["thread_ts"] = thread_ts
        gateway.call("files_upload_v2", **args)
        return True
    log.info("retrain.report_png_skipped", reason="the poster cannot upload files")
    return False


def post_report(poster: Any, channel: str, report: RunReport) -> str:
    """Post the report (blocks, then the PNG in its thread); returns the message ts."""
    text = headline(report)
    ts: str = poster.post(channel=channel, text=text, blocks=build_blocks(report))
    if report.status in {"succeeded", "rejected"} and (report.curve or report.candidate):
        try:
            upload_png(poster, channel=channel, png=render_png(report), filename=f"retrain-{report.run_id}.png",
                       title=f"Run #{report.run_id}: learning curves and confusion matrix", thread_ts=ts)
        except BeaconError:  # the report itself is out; a missing chart is logged, not fatal
            log.error("retrain.report_png_failed", run_id=report.run_id, exc_info=True)
    return ts


def summary_lines(rows: Sequence[tuple[str, str, float | None, float | None]]) -> list[str]:
    """The metric diffs as plain text lines (CLI output)."""
    out = []
    for name, metric, old, new in rows:
        delta = "" if old is None or new is None else f" ({(new - old) * 100:+.2f})"
        out.append(f"{name} {metric}: {_pct(old)} → {_pct(new)}{delta}")
    return out
