"""`beacon retrain`, `beacon labels export|stats`, and `beacon models show|rollback`.

Thin: each command parses its arguments, calls :mod:`jobs.retrain`, :mod:`jobs.labels` or the
registry, and prints. ``models show`` and ``models rollback`` join the ``models`` group that
:mod:`bot.cli_models` registers (or create it when it is absent).
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from bot.cli_common import migrated
from bot.context import Context
from bot.errors import InputError
from bot.storage import registry
from bot.storage.db import session_scope

labels_app = typer.Typer(help="Feedback labels: export and statistics.", no_args_is_help=True)
console = Console()


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def ops_poster(c: Context) -> Any:
    """The Slack poster for the ops report, or None without a bot token or an ops channel."""
    settings = c.settings
    if settings.ops_channel is None or settings.slack_bot_token is None:
        return None
    from bot.slack_client import SlackGateway, SlackPoster, make_web_client

    return SlackPoster(SlackGateway(make_web_client(settings)))


# ------------------------------------------------------------------ retrain


def retrain_cmd(
    ctx: typer.Context,
    from_scratch: bool = typer.Option(False, "--from-scratch", help="Start from the base encoder, not the active one."),
    force: bool = typer.Option(False, "--force", help="Promote even if the gate says no (logged and audited)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run one retraining cycle now: feedback labels + base data → candidate → gate → promotion."""
    from jobs.gate import diff_rows
    from jobs.report import summary_lines
    from jobs.retrain import run_retrain

    c = migrated(ctx)
    result = run_retrain(c, force=force, from_scratch=from_scratch, trigger="cli", poster=ops_poster(c),
                         actor=_actor())
    if as_json:
        typer.echo(json.dumps({k: v for k, v in vars(result).items() if k != "metrics"}, indent=2, default=str))
    else:
        typer.echo(f"run #{result.run_id}: {result.status}" + (f" — {result.version}" if result.version else ""))
        for reason in result.reasons:
            typer.echo(f"  {'override' if result.forced else 'gate'}: {reason}")
        for line in summary_lines(diff_rows(result.metrics.get("candidate") or {}, result.metrics.get("active"))):
            typer.echo(f"  {line}")
    if result.status == "failed":
        typer.echo(f"error: {result.error}", err=True)
        raise typer.Exit(1)


# ------------------------------------------------------------------ labels


@labels_app.command("export")
def labels_export(
    ctx: typer.Context,
    fmt: str = typer.Option("jsonl", "--format", help="Output format (jsonl: Beacon's own)."),
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout."),
    split: str = typer.Option("all", "--split", help="all | train | test (the held-out feedback test set)."),
) -> None:
    """Write the aggregated feedback labels in the `jsonl:` format."""
    from jobs.labels import collect_labels, export_jsonl

    if fmt != "jsonl":
        raise InputError(f"--format {fmt!r} is not supported; use jsonl")
    if split not in {"all", "train", "test"}:
        raise InputError(f"--split {split!r}: use all, train or test")
    c = migrated(ctx)
    with c.sessions() as session:
        label_set = collect_labels(session=session, holdout=c.settings.feedback_holdout)
    if out is None:
        count = export_jsonl(label_set, sys.stdout, split=split)
    else:
        with out.open("w", encoding="utf-8") as fh:
            count = export_jsonl(label_set, fh, split=split)
    typer.echo(f"{count} labels written{f' to {out}' if out else ''}", err=True)


@labels_app.command("stats")
def labels_stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Counts by kind, labels, exclusions, pending labels, and agreement between users (kappa)."""
    from jobs.labels import label_stats

    c = migrated(ctx)
    with c.sessions() as session:
        stats = label_stats(session=session, holdout=c.settings.feedback_holdout)
    if as_json:
        typer.echo(json.dumps(stats, indent=2, default=str))
        return
    table = Table("what", "count", title="Feedback labels")
    for kind, n in stats["feedback"]["active"].items():
        table.add_row(f"feedback: {kind}", str(n))
    table.add_row("feedback: retracted", str(stats["feedback"]["retracted"]))
    table.add_row("users", str(stats["feedback"]["users"]))
    for kind, n in stats["labels"]["by_kind"].items():
        table.add_row(f"label: {kind}", str(n))
    table.add_row("labels for training", str(stats["labels"]["train"]))
    table.add_row("labels held out (feedback test)", str(stats["labels"]["test"]))
    for reason, n in stats["labels"]["excluded"].items():
        table.add_row(f"excluded: {reason}", str(n))
    table.add_row("new since the last run", str(stats["pending"]))
    console.print(table)
    agreement = stats["agreement"]
    kappa = agreement["fleiss_kappa"]
    console.print(f"agreement on {agreement['items_with_several_users']} items rated by several users: "
                  f"observed {_fmt(agreement['observed'])}, Fleiss' kappa {_fmt(kappa)}")
    for pair, value in agreement["cohen_kappa"].items():
        console.print(f"  Cohen's kappa {pair}: {_fmt(value)}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# ------------------------------------------------------------------ models show / rollback


def _reports(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from jobs.gate import FEEDBACK

    reports = dict(metrics.get("dev") or {})
    if metrics.get("feedback_test"):
        reports[FEEDBACK] = metrics["feedback_test"]
    return reports


def _sources(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    for value in (manifest.get("sources"), manifest.get("data"), manifest.get("data_manifest")):
        if isinstance(value, list):
            return [v for v in value if isinstance(v, dict)]
    return []


def models_show(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="The model version (see `beacon models list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A version's metrics, data manifest, audit trail and its diff against the active model."""
    from jobs.gate import diff_rows

    c = migrated(ctx)
    with c.sessions() as session:
        row = registry.get_version(session=session, version=version)
        active = registry.active_version(session=session)
        audit = registry.audit_log(session=session, version=version)
        info = {"version": row.version, "status": row.status, "path": row.path, "parent": row.parent_version,
                "created_at": row.created_at, "promoted_at": row.promoted_at, "notes": row.notes,
                "active": active.version if active else None}
        diff = diff_rows(_reports(row.metrics), _reports(active.metrics) if active else None)
        trail = [{"action": a.action, "actor": a.actor, "reason": a.reason, "at": a.created_at} for a in audit]
        metrics, manifest = row.metrics, row.manifest
    if as_json:
        typer.echo(json.dumps({**info, "metrics": metrics, "manifest": manifest, "audit": trail,
                               "diff": [dict(zip(("set", "metric", "active", "this"), r, strict=True))
                                        for r in diff]}, indent=2, default=str))
        return
    for key, value in info.items():
        console.print(f"[bold]{key}[/bold]: {value if value is not None else '–'}")
    table = Table("set", "metric", f"active ({info['active'] or '–'})", "this", "Δ points", title="Metrics")
    for name, metric, old, new in diff:
        delta = "" if old is None or new is None else f"{(new - old) * 100:+.2f}"
        table.add_row(name, metric, _pct(old), _pct(new), delta)
    console.print(table)
    sources = Table("role", "spec", "sha256", "n", title="Data manifest")
    for source in _sources(manifest):
        sources.add_row(str(source.get("role", "")), str(source.get("spec", "")),
                        str(source.get("sha256", ""))[:12], str(source.get("n", "")))
    console.print(sources)
    trail_table = Table("when", "action", "who", "why", title="Audit")
    for entry in reversed(trail):
        trail_table.add_row(str(entry["at"]), str(entry["action"]), str(entry["actor"]), str(entry["reason"] or ""))
    console.print(trail_table)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}"


def models_rollback(
    ctx: typer.Context,
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit log)."),
) -> None:
    """Re-activate the model that was active before the current one (audited)."""
    c = migrated(ctx)
    with session_scope(c.sessions) as session:
        current = registry.active_version(session=session)
        back = registry.rollback(session=session, actor=_actor(), reason=reason)
        was, now = (current.version if current else None), back.version
    typer.echo(f"active model: {now} (was {was}); serving processes swap it in on their next poll")


def _models_group(app: typer.Typer) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == "models" and group.typer_instance is not None:
            return group.typer_instance
    models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
    app.add_typer(models_app, name="models")
    return models_app


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("retrain")(retrain_cmd)
    app.add_typer(labels_app, name="labels")
    models_app = _models_group(app)
    models_app.command("show")(models_show)
    models_app.command("rollback")(models_rollback)
