"""Retraining inputs: the options, the replayed base data and the feedback files the child reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.bootstrap import SEED_DEV_FRACTION, SEED_SALT
from bot.settings import Settings
from jobs import labels as labels_mod
from models.data import example_to_record


@dataclass
class RetrainOptions:
    """Training knobs that are not settings (defaults suit nightly fine-tuning of the active model)."""

    epochs: int = 4
    lr: float = 7e-5
    from_scratch_epochs: int = 3
    from_scratch_lr: float = 5e-5
    batch_size: int = 32
    seed: int = 13
    replay_ratio: float | None = 4.0  # base examples replayed per feedback label (None: all the base data)
    replay_min: int = 1000  # ...but at least this many (a sample, drawn anew each run)
    max_base_examples: int | None = None  # a fixed replay cap instead (overrides the ratio)
    train_config: dict[str, Any] = field(default_factory=dict)  # other TrainConfig fields
    launcher: list[str] | None = None  # the child command (the spec path is appended)
    timeout_s: float | None = None  # hard limit for the child; default 3 × the budget + 10 min
    heartbeat_s: float = 20.0
    nice: int = 10  # the child's CPU priority penalty (the bot keeps answering)


# ------------------------------------------------------------------ data preparation




def base_sources(settings: Settings, run_dir: Path) -> tuple[list[str], list[str]]:
    """(base training specs, dev specs): ``BEACON_BASE_TRAIN``/``BEACON_BASE_DEV``, or, when no base
    training data is configured, the default model's own seed data split as ``bot.bootstrap`` splits it."""
    if settings.base_train:
        return list(settings.base_train), list(settings.base_dev)
    from bot.bootstrap import seed_specs
    from models.data import holdout_split, read_source

    seed = [ex for spec in seed_specs() for ex in read_source(spec)]
    train, dev = holdout_split(seed, SEED_DEV_FRACTION, salt=SEED_SALT)
    train_spec = write_examples(run_dir / "seed_train.jsonl", train)
    dev_spec = write_examples(run_dir / "seed_dev.jsonl", dev)
    return [s for s in (train_spec,) if s], list(settings.base_dev) or [s for s in (dev_spec,) if s]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_examples(path: Path, examples: Sequence[Any]) -> str | None:
    """Write ``examples`` as jsonl; the ``jsonl:`` spec, or None when there are none."""
    if not examples:
        return None
    with path.open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(example_to_record(ex), ensure_ascii=False, sort_keys=True) + "\n")
    return f"jsonl:{path}"


def replay_limit(options: RetrainOptions, feedback_labels: int) -> int | None:
    """How many base examples to replay: all (None), a fixed cap, or a multiple of the feedback labels.

    A sample keeps the feedback's share of each epoch meaningful and the run short; drawn with a
    seed that changes every run, the nights together still go over all the base data."""
    if options.max_base_examples is not None:
        return options.max_base_examples
    if options.replay_ratio is None:
        return None
    return max(options.replay_min, round(options.replay_ratio * feedback_labels))


@dataclass
class Prepared:
    spec: dict[str, Any]
    counts: dict[str, Any]
    run_dir: Path


def prepare(settings: Settings, label_set: labels_mod.LabelSet, *, run_id: int, init_from: str | None,
            active_path: str | None, from_scratch: bool, options: RetrainOptions) -> Prepared:
    run_dir = (settings.home / "runs" / f"run-{run_id}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    feedback_train = write_examples(run_dir / "feedback_train.jsonl",
                                    label_set.train_examples(settings.feedback_weight))
    feedback_test = write_examples(run_dir / "feedback_test.jsonl", label_set.test_examples())
    base, dev = base_sources(settings, run_dir)
    config = {
        "base_model": settings.base_model, "device": settings.device, "seed": options.seed,
        "batch_size": options.batch_size,
        "epochs": options.from_scratch_epochs if from_scratch else options.epochs,
        "lr": options.from_scratch_lr if from_scratch else options.lr,
        **options.train_config,
    }
    spec = {
        "config": config, "train": base, "dev": dev, "feedback_train": feedback_train,
        "feedback_test": feedback_test, "init_from": init_from, "active": active_path,
        "out_dir": str(settings.models_dir.resolve() / f".run-{run_id}"), "result": str(run_dir / "result.json"),
        "cpu_max_minutes": settings.retrain_max_minutes, "nice": options.nice,
        "max_base_examples": replay_limit(options, len(label_set.train)), "replay_seed": options.seed + run_id,
    }
    (run_dir / "spec.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    hashes = {name: _sha256(run_dir / name) for name in ("feedback_train.jsonl", "feedback_test.jsonl")
              if (run_dir / name).is_file()}
    counts = {**label_set.counts(), "feedback_train": len(label_set.train), "feedback_test": len(label_set.test),
              "feedback_sha256": hashes, "base_sources": base, "dev_sources": dev,
              "feedback_weight": settings.feedback_weight}
    return Prepared(spec, counts, run_dir)
