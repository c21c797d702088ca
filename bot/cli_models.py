"""`beacon train`, `beacon eval`, `beacon analyze` and `beacon models list|promote`.

Thin wrappers: parse, call :mod:`bot.training`, :mod:`models.scoring` or the Analyzer, print.
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

from bot.cli_common import context
from bot.context import Context
from bot.errors import InputError, NotFound
from bot.storage import registry
from bot.storage.db import session_scope

models_app = typer.Typer(help="The model registry: list, show, promote, roll back.", no_args_is_help=True)
console = Console(stderr=True)


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def resolve_model(c: Context, ref: str) -> Path:
    """``active``, a registered version, or an artifact folder → the artifact folder."""
    path = Path(ref).expanduser()
    if ref != "active" and path.is_dir():
        return path
    c.migrate()
    with session_scope(c.sessions) as session:
        if ref == "active":
            row = registry.active_version(session=session)
            if row is None:
                raise NotFound("no active model: train one with `beacon train ... --promote` or run `beacon run`")
        else:
            row = registry.get_version(session=session, version=ref)
        return Path(row.path)


def train_cmd(
    ctx: typer.Context,
    train: list[str] = typer.Option(..., "--train", help="FORMAT:PATH (conll, fpb, jsonl); repeat."),
    dev: list[str] = typer.Option([], "--dev", help="FORMAT:PATH dev set for early stopping; repeat."),
    base_model: str | None = typer.Option(None, "--base-model", help="HF name or path (default: packaged MiniLM)."),
    init_from: str | None = typer.Option(None, "--init-from", help="Continue from a version, path or 'active'."),
    epochs: int = typer.Option(3, "--epochs", min=1),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    lr: float = typer.Option(5e-5, "--lr", min=0.0),
    seed: int = typer.Option(13, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda"),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Stop cleanly after this long."),
    max_length: int = typer.Option(128, "--max-length", min=16),
    no_casing: bool = typer.Option(False, "--no-casing", help="Turn the casing-feature embedding off."),
    out: Path | None = typer.Option(None, "--out", help="Artifact folder (default BEACON_HOME/models/VERSION)."),
    promote: bool = typer.Option(False, "--promote", help="Make the new model active."),
) -> None:
    """Fine-tune the two-head model and register the artifact as a candidate."""
    from bot.training import load_dev, load_sources, train_and_register
    from models.train import TrainConfig

    c = context(ctx)
    if device not in {"auto", "cpu", "cuda"} and not device.startswith("cuda:"):
        raise InputError(f"--device must be auto, cpu or cuda, not {device!r}")
    config = TrainConfig(
        base_model=base_model or c.settings.base_model, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        device=device, max_minutes=max_minutes, max_length=max_length, casing=not no_casing,
    )
    start = resolve_model(c, init_from) if init_from else None
    version, path, metrics = train_and_register(
        c, train_data=load_sources(train), dev_data=load_dev(dev), config=config, init_from=start,
        promote=promote, actor=actor(), out_dir=out,
    )
    typer.echo(json.dumps({"version": version, "path": str(path), "promoted": promote, "metrics": metrics},
                          indent=2, default=str))


def eval_cmd(
    ctx: typer.Context,
    model: str = typer.Option("active", "--model", help="A version, an artifact path, or 'active'."),
    test: list[str] = typer.Option(..., "--test", help="FORMAT:PATH; repeat."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
) -> None:
    """Score a model on test files: NER with seqeval (strict IOB2), sentiment with accuracy, F1, ECE."""
    from models.analyze import Analyzer
    from models.scoring import evaluate_examples

    c = context(ctx)
    analyzer = Analyzer.load(resolve_model(c, model), device=c.settings.device)
    results: dict[str, Any] = {}
    for spec in test:
        results[spec] = evaluate_examples(analyzer, read_spec(spec), batch_size=batch_size)
    if as_json:
        typer.echo(json.dumps(results, indent=2, sort_keys=True))
        return
    table = Table("test set", "task", "n", "score", "details", title=f"model {analyzer.version}")
    for spec, rep in results.items():
        for part in (rep, rep.get("sentiment")):
            if not isinstance(part, dict):
                continue
            if part.get("task") == "ner":
                table.add_row(spec, "ner", str(part["n"]), f"F1 {part['f1']:.4f}",
                              f"P {part['precision']:.4f} R {part['recall']:.4f}")
            elif part.get("task") == "sentiment":
                table.add_row(spec, "sentiment", str(part["n"]), f"acc {part['accuracy']:.4f}",
                              f"macro-F1 {part['macro_f1']:.4f} ECE {part['ece']:.4f}")
    Console().print(table)
    typer.echo(json.dumps(results, sort_keys=True))


def read_spec(spec: str) -> Any:
    from models.data import read_source

    return read_source(spec)


def analyze_cmd(
    ctx: typer.Context,
    text: str | None = typer.Argument(None, help="Text to analyse (or use --file)."),
    file: Path | None = typer.Option(None, "--file", "-f", help="One text per line; '-' for stdin."),
    model: str = typer.Option("active", "--model", help="A version, an artifact path, or 'active'."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
) -> None:
    """Entities and sentiment as one JSON object per text."""
    from bot.services import check_text
    from models.analyze import Analyzer

    texts = _texts(text, file)
    c = context(ctx)
    analyzer = Analyzer.load(resolve_model(c, model), device=c.settings.device)
    for start in range(0, len(texts), 256):
        chunk = [check_text(t) for t in texts[start:start + 256]]
        for analysis in analyzer.analyze(chunk, batch_size=batch_size):
            typer.echo(json.dumps(analysis.to_dict(), ensure_ascii=False))


def _texts(text: str | None, file: Path | None) -> list[str]:
    if (text is None) == (file is None):
        raise InputError("give either TEXT or --file F")
    if text is not None:
        return [text]
    assert file is not None
    if str(file) == "-":
        return [line.rstrip("\r\n") for line in sys.stdin]
    if not file.is_file():
        raise InputError(f"--file {file}: no such file")
    raw = file.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"--file {file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return content.splitlines()


@models_app.command("list")
def models_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Registered model versions, newest first."""
    c = context(ctx)
    c.migrate()
    with session_scope(c.sessions) as session:
        rows = [
            {"version": r.version, "status": r.status, "created_at": r.created_at.isoformat(),
             "score": _headline(r.metrics), "path": r.path}
            for r in registry.list_versions(session=session)
        ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("version", "status", "created", "dev", "path", title="Beacon models")
    for r in rows:
        table.add_row(r["version"], r["status"], r["created_at"][:19], r["score"], r["path"])
    Console().print(table)


def _headline(metrics: dict[str, Any]) -> str:
    parts = []
    for spec, rep in (metrics.get("dev") or metrics).items():
        if isinstance(rep, dict) and rep.get("task") == "ner":
            parts.append(f"{spec.split(':')[0]} F1 {rep['f1']:.3f}")
        if isinstance(rep, dict) and isinstance(rep.get("sentiment", rep), dict):
            s = rep.get("sentiment", rep)
            if s.get("task") == "sentiment":
                parts.append(f"acc {s['accuracy']:.3f}")
    return ", ".join(parts)


@models_app.command("promote")
def models_promote(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="The version to make active."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit log)."),
) -> None:
    """Make VERSION the active model; serving processes swap it in without restart."""
    c = context(ctx)
    c.migrate()
    with session_scope(c.sessions) as session:
        previous = registry.active_version(session=session)
        was = previous.version if previous else None
        registry.promote(session=session, version=version, actor=actor(), reason=reason)
    typer.echo(f"active model: {version} (was {was})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
    app.command("analyze")(analyze_cmd)
    app.add_typer(models_app, name="models")
