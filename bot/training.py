"""Train a model from ``FORMAT:PATH`` sources and register it: the service behind
``beacon train`` and the first-run bootstrap. The loop itself is :func:`models.train.train`."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.context import Context
from bot.errors import InputError
from bot.log import get_logger
from bot.storage import registry
from bot.storage.db import session_scope
from models.artifact import read_meta
from models.data import Example, manifest_entry, read_source
from models.train import TrainConfig, train

log = get_logger("beacon.train")


@dataclass
class Sources:
    examples: list[Example]
    manifest: list[dict[str, Any]]


def load_sources(specs: Sequence[str]) -> Sources:
    """Read every spec (DataError names the file and line); manifest entries for the artifact."""
    examples: list[Example] = []
    manifest: list[dict[str, Any]] = []
    for spec in specs:
        part = read_source(spec)
        if not part:
            raise InputError(f"{spec}: no examples")
        examples.extend(part)
        manifest.append(manifest_entry(spec, part))
    return Sources(examples, manifest)


def load_dev(specs: Sequence[str]) -> dict[str, list[Example]]:
    return {spec: read_source(spec) for spec in specs}


def staging_dir(models_dir: Path) -> Path:
    from models.artifact import new_model_version

    path = models_dir / f".staging-{new_model_version()}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def train_and_register(
    c: Context,
    *,
    train_data: Sources,
    dev_data: dict[str, list[Example]],
    config: TrainConfig,
    init_from: Path | None = None,
    promote: bool = False,
    actor: str = "cli",
    notes: str | None = None,
    progress: bool = True,
    out_dir: Path | None = None,
) -> tuple[str, Path, dict[str, Any]]:
    """Train, move the artifact to ``BEACON_HOME/models/VERSION`` (or ``out_dir``), register it
    as a candidate (``promote``: make it active). Returns (version, path, dev metrics)."""
    models_dir = c.settings.models_dir
    stage = staging_dir(models_dir)
    try:
        best: Path | None = None
        for result in train(config, train_data.examples, dev_data, out_dir=stage, log=log, init_from=init_from,
                            progress=progress, manifest=train_data.manifest):
            best = result.artifact or best
        if best is None:
            from models.errors import TrainingError

            raise TrainingError("training produced no artifact (no epoch completed?)")
        meta = read_meta(best)
        final = out_dir if out_dir is not None else models_dir / meta.model_version
        if final.exists():
            raise InputError(f"{final} already exists; choose another --out")
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(best), str(final))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    c.migrate()
    with session_scope(c.sessions) as session:
        registry.register_version(
            session=session, version=meta.model_version, path=str(final.resolve()), metrics=meta.metrics,
            manifest={"sources": meta.data_manifest, "train_config": meta.train_config},
            parent_version=meta.parent_version, actor=actor, notes=notes,
        )
        if promote:
            registry.promote(session=session, version=meta.model_version, actor=actor, reason=notes or "--promote")
    log.info("model.registered", model_version=meta.model_version, path=str(final), promoted=promote)
    return meta.model_version, final, meta.metrics
