"""The retraining child process: ``python -m jobs.train_child SPEC.json`` (or under ``torchrun``).

It never touches the database or Slack: it reads the data named in the spec, fine-tunes with
:func:`models.train.train`, scores the candidate and the active model on the base dev sets and the
feedback test set, and writes ``result.json`` (atomically). The parent (``jobs.retrain``) records
the run, applies the gate and reports. A failure writes ``{"ok": false, "error": ...}`` and exits 1;
a crash leaves no result, and the parent records the exit status and the output's tail.

Under ``torchrun`` every rank trains (DDP); rank 0 alone evaluates and writes.

Spec keys: ``config`` (TrainConfig fields), ``train`` (FORMAT:PATH list of base data),
``feedback_train`` / ``feedback_test`` (jsonl specs or null), ``dev`` (FORMAT:PATH list),
``init_from`` / ``active`` (artifact folders or null), ``out_dir``, ``result``,
``cpu_max_minutes`` (time budget on CPU), ``max_base_examples`` (replay cap, null = all).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs.gate import FEEDBACK, task_metrics
from models import distributed
from models.data import Example, manifest_entry, read_source
from models.device import resolve_device, use_bf16
from models.errors import BeaconError


class JsonLog:
    """Structured progress on stdout, one JSON object a line (the parent keeps it in child.log)."""

    def info(self, event: str, **kw: Any) -> None:
        print(json.dumps({"event": event, **kw}, default=str), flush=True)


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def replay_sample(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """All base examples, or a fixed random sample of ``limit`` of them."""
    if limit is None or len(examples) <= limit:
        return examples
    rng = random.Random(seed)
    return sorted(rng.sample(examples, limit), key=lambda ex: ex.source)


def load_data(spec: dict[str, Any], seed: int) -> tuple[list[Example], dict[str, list[Example]], list[Example],
                                                      list[dict[str, Any]]]:
    """(training examples, dev sets, feedback test examples, manifest)."""
    manifest: list[dict[str, Any]] = []
    base: list[Example] = []
    for source in spec.get("train", []):
        examples = read_source(source)
        manifest.append({**manifest_entry(source, examples), "role": "base"})
        base.extend(examples)
    train = replay_sample(base, spec.get("max_base_examples"), int(spec.get("replay_seed", seed)))
    if spec.get("feedback_train"):
        feedback = read_source(spec["feedback_train"])
        manifest.append({**manifest_entry(spec["feedback_train"], feedback), "role": "feedback"})
        train.extend(feedback)
    dev = {source: read_source(source) for source in spec.get("dev", [])}
    for source, examples in dev.items():
        manifest.append({**manifest_entry(source, examples), "role": "dev"})
    test = read_source(spec["feedback_test"]) if spec.get("feedback_test") else []
    if spec.get("feedback_test"):
        manifest.append({**manifest_entry(spec["feedback_test"], test), "role": "feedback_test"})
    return train, dev, test, manifest


def evaluate(target: Any, examples: Sequence[Example]) -> dict[str, Any]:
    """The scoring report, plus for 👎 examples the share whose rejected sentiment is avoided."""
    from models.predict import apply_temperature
    from models.scoring import collect, evaluate_examples

    labelled = [ex for ex in examples if ex.sentiment is not None or ex.tags is not None]
    report = evaluate_examples(target, labelled) if labelled else {"task": "none", "n": 0}
    rejected = [ex for ex in examples if ex.not_sentiment is not None]
    if rejected:
        docs = collect(target.predictor, rejected)
        labels = list(target.sentiment_labels)
        t = float(target.temperatures.get("sentiment", 1.0))
        avoided = sum(labels[int(apply_temperature(d.sentiment_logits, t).argmax())] != ex.not_sentiment
                      for d, ex in zip(docs, rejected, strict=True))
        report["rejected"] = {"n": len(rejected), "avoided": round(avoided / len(rejected), 6)}
    return report


def score_models(path: Path | None, dev: dict[str, list[Example]], test: list[Example],
                 device: str) -> dict[str, dict[str, Any]] | None:
    """Reports for one model folder on every dev set and the feedback test set."""
    if path is None:
        return None
    from models.analyze import Analyzer

    analyzer = Analyzer.load(path, device=device)
    reports = {name: evaluate(analyzer, examples) for name, examples in dev.items()}
    if test:
        reports[FEEDBACK] = evaluate(analyzer, test)
    return reports


def curve_point(result: Any) -> dict[str, Any]:
    return {
        "epoch": result.epoch, "steps": result.steps, "train_loss": result.train_loss, "score": result.score,
        "seconds": round(result.seconds, 3), "samples_per_s": round(result.samples_per_s, 2),
        "dev": {name: task_metrics(report) for name, report in result.dev.items()}, "stopped": result.stopped,
    }


def run(spec: dict[str, Any], log: JsonLog) -> dict[str, Any] | None:
    """Train and score; the result dict on rank 0, None on other ranks."""
    from models.artifact import read_meta
    from models.train import TrainConfig, train

    started = time.monotonic()
    config = TrainConfig(**spec["config"])
    device = resolve_device(config.device)
    if device.type == "cpu" and spec.get("cpu_max_minutes"):
        config.max_minutes = float(spec["cpu_max_minutes"])
    if device.type == "cpu" and spec.get("nice"):
        os.nice(int(spec["nice"]))  # the serving process keeps the CPU first
    train_data, dev, test, manifest = load_data(spec, config.seed)
    loaded = time.monotonic()
    curve: list[dict[str, Any]] = []
    init_from = Path(spec["init_from"]) if spec.get("init_from") else None
    for result in train(config, train_data, dev, out_dir=Path(spec["out_dir"]), log=log, init_from=init_from,
                        progress=False, manifest=manifest):
        curve.append(curve_point(result))
    trained = time.monotonic()
    if not distributed.is_main():
        return None
    meta = read_meta(Path(spec["out_dir"]))
    eval_device = str(device) if device.type == "cuda" else "cpu"
    candidate = score_models(Path(spec["out_dir"]), dev, test, eval_device)
    active = score_models(Path(spec["active"]) if spec.get("active") else None, dev, test, eval_device)
    bf16 = use_bf16(device, config.precision)
    world = distributed.world_size()
    return {
        "ok": True,
        "version": meta.model_version,
        "parent_version": meta.parent_version,
        "device": f"{device.type}{f'×{world}' if world > 1 else ''}{' bf16' if bf16 else ''}",
        "curve": curve,
        "candidate": candidate,
        "active": active,
        "manifest": manifest,
        "counts": {"train": len(train_data), "dev": {k: len(v) for k, v in dev.items()}, "feedback_test": len(test),
                   "replayed": sum(not ex.source.startswith(f"{spec.get('feedback_train')}:") for ex in train_data)},
        "timings": {"load_s": round(loaded - started, 3), "train_s": round(trained - loaded, 3),
                    "eval_s": round(time.monotonic() - trained, 3)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m jobs.train_child SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    log = JsonLog()
    distributed.init(spec["config"].get("device", "auto"))
    try:
        result = run(spec, log)
    except BeaconError as exc:
        if distributed.is_main():
            write_json(Path(spec["result"]), {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        log.info("child.failed", error=str(exc))
        return 1
    finally:
        _shutdown()
    if result is not None:
        write_json(Path(spec["result"]), result)
        log.info("child.done", version=result["version"])
    return 0


def _shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
