"""Proof that the loop learns: FPB-only model → tweets through Slack → feedback → `beacon retrain` → better.

1. Train a model on the Financial PhraseBank only (90%; the deterministic 10% is the FPB dev set).
2. Stream tweets from twitter_financial_news_sentiment/sent_train.csv (0 bearish → negative,
   1 bullish → positive, 2 neutral) through the real Slack path (signed events into the bot's HTTP
   endpoint, the fake Slack Web API, the bot's replies): simulated agents 👍 right answers and
   👎 + correct wrong ones through the modal. The noisy variant flips 10% of the feedback.
3. After 100, 300 and 1,000 feedback events run `beacon retrain` (base data = FPB train, dev = FPB dev).
4. Report accuracy on a held-out slice of tweets (never streamed) and on FPB dev after each run.

Targets: after 300 events, tweet accuracy +10 points with FPB dev down at most 1 point; in the noisy
variant the gate rejects every candidate that is worse (on the held-out tweets, or on FPB dev by more
than the gate's tolerance).

    python benchmarks/feedback_loop.py [--device cuda] [--quick] [--events 100,300,1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from common import DEFAULT_DATA, describe_device, emit  # noqa: E402
from feedback_sim import SlackBot  # noqa: E402

from models.data import Example, example_from_spans, example_to_record, holdout_split, read_source  # noqa: E402

TWEET_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}
TOLERANCE = 0.5  # points: BEACON_GATE_TOLERANCE's default


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (bot and training)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a CPU sanity run")
    parser.add_argument("--events", default=None, help="retrain after these cumulative feedback counts")
    parser.add_argument("--noisy-events", default=None, help="checkpoints of the noisy variant (default: --events)")
    parser.add_argument("--eval-size", type=int, default=None, help="held-out tweets (default 1000; quick 60)")
    parser.add_argument("--noise", type=float, default=0.10, help="share of flipped feedback in the noisy variant")
    parser.add_argument("--variants", default="clean,noisy", help="clean, noisy or both")
    parser.add_argument("--initial-epochs", type=int, default=None, help="epochs of the FPB-only model")
    parser.add_argument("--base-model", default="default")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--workdir", type=Path, default=None, help="keep databases and models here")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON result here")
    return parser.parse_args()


def read_tweets(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [(row["text"].strip(), TWEET_LABELS[row["label"].strip()]) for row in csv.DictReader(fh)]
    return [(text, label) for text, label in rows if text]


def split_tweets(tweets: list[tuple[str, str]], eval_size: int, seed: int
                 ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(held-out evaluation slice, stream order): a fixed hash split, the stream shuffled by ``seed``."""
    examples = [example_from_spans(text, None, label) for text, label in tweets]
    stream, held = holdout_split(examples, 0.15, salt="feedback-loop-eval")
    held_pairs = [(ex.text, ex.sentiment or "") for ex in held][:eval_size]
    stream_pairs = [(ex.text, ex.sentiment or "") for ex in stream]
    random.Random(seed).shuffle(stream_pairs)
    return held_pairs, stream_pairs


def write_jsonl(path: Path, examples: list[Example]) -> str:
    path.write_text("".join(json.dumps(example_to_record(ex)) + "\n" for ex in examples), encoding="utf-8")
    return f"jsonl:{path}"


def train_initial(args: argparse.Namespace, fpb_train: list[Example], fpb_dev: list[Example], dev_spec: str,
                  out: Path) -> tuple[Path, str, float]:
    from models.artifact import read_meta
    from models.train import TrainConfig, train_to_artifact

    class Quiet:
        def info(self, event: str, **kw: Any) -> None:
            pass

    epochs = args.initial_epochs or (1 if args.quick else 3)
    config = TrainConfig(base_model=args.base_model, epochs=epochs, batch_size=32, lr=5e-5, device=args.device,
                         seed=args.seed, patience=0)
    started = time.monotonic()
    path = train_to_artifact(config, fpb_train, {dev_spec: fpb_dev}, out_dir=out, log=Quiet(), progress=False)
    return path, read_meta(path).model_version, time.monotonic() - started


def accuracy(path: str | Path, examples: list[Example], device: str) -> float:
    from models.analyze import Analyzer
    from models.scoring import evaluate_examples

    report = evaluate_examples(Analyzer.load(Path(path), device=device), examples)
    return float(report["accuracy"])


def scores(path: str | Path, sets: dict[str, list[Example]], device: str) -> dict[str, float]:
    return {name: round(accuracy(path, examples, device) * 100, 2) for name, examples in sets.items()}


def fp32_base(name: str) -> str:
    """The base encoder folder, or an fp32 copy when its weights are stored in half precision (fp32 masters)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from models.base import resolve_base_model

    folder = Path(resolve_base_model(name))
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return str(folder)
    with safe_open(str(weights), "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    if all(t.dtype == torch.float32 for t in tensors.values() if t.is_floating_point()):
        return str(folder)
    copy = Path(tempfile.mkdtemp(prefix="base32-"))
    for item in folder.iterdir():
        if item.is_file() and item.name != "model.safetensors":
            (copy / item.name).write_bytes(item.read_bytes())
    save_file({k: t.float() if t.is_floating_point() else t for k, t in tensors.items()},
              str(copy / "model.safetensors"), metadata={"format": "pt"})
    return str(copy)


def run_variant(name: str, noise: float, args: argparse.Namespace, ctx: dict[str, Any]) -> list[dict[str, Any]]:
    bot = SlackBot.start(ctx["work"] / name, artifact=ctx["artifact"], version=ctx["version"],
                         base_train=ctx["train_spec"], base_dev=ctx["dev_spec"], device=ctx["device"])
    rng = random.Random(args.seed + (1 if noise else 0))
    rows: list[dict[str, Any]] = [{"variant": name, "events": 0, "status": "baseline", **ctx["baseline"]}]
    active = ctx["baseline"]
    stream = iter(ctx["stream"])
    try:
        for target in ctx["checkpoints"][name]:
            started = time.monotonic()
            while bot.counts.events < target:
                text, gold = next(stream)
                bot.agent_turn(text, gold, rng, noise=noise)
            streamed = time.monotonic() - started
            result = bot.retrain(timeout=ctx["retrain_timeout"])
            row: dict[str, Any] = {"variant": name, "events": target, "status": result.get("status"),
                                   "version": result.get("version"), "retrain_s": result.get("seconds"),
                                   "stream_s": round(streamed, 1), "reasons": result.get("reasons", []),
                                   "error": result.get("error"), "counts": vars(bot.counts).copy()}
            if result.get("version"):
                candidate = scores(bot.version_path(result["version"]), ctx["sets"], ctx["device"])
                row["candidate"] = candidate
                worse = (candidate["tweets"] < active["tweets"]
                         or candidate["fpb_dev"] < active["fpb_dev"] - TOLERANCE)
                row["candidate_worse"] = worse
                row["gate_ok"] = (result["status"] == "rejected") if worse else True
                if result["status"] == "succeeded":
                    active = candidate
            row.update(active)
            rows.append(row)
            print(json.dumps({"progress": row}, default=str), flush=True)
    finally:
        bot.stop()
    return rows


def targets(rows: list[dict[str, Any]], baseline: dict[str, float], at: int) -> dict[str, Any]:
    clean = [r for r in rows if r["variant"] == "clean" and r["events"] == at]
    noisy = [r for r in rows if r["variant"] == "noisy" and "gate_ok" in r]
    out: dict[str, Any] = {"noisy_gate_ok": all(r["gate_ok"] for r in noisy) if noisy else None}
    if clean:
        gain = clean[0]["tweets"] - baseline["tweets"]
        drop = baseline["fpb_dev"] - clean[0]["fpb_dev"]
        out.update({f"tweets_gain_at_{at}": round(gain, 2), f"fpb_drop_at_{at}": round(drop, 2),
                    "tweets_target_met": gain >= 10.0, "fpb_target_met": drop <= 1.0})
    return out


def main() -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from models.device import resolve_device, use_bf16

    args = parse_args()
    device = resolve_device(args.device)
    args.device = device.type
    clean_points = [int(x) for x in (args.events or ("10,30" if args.quick else "100,300,1000")).split(",")]
    checkpoints = {"clean": clean_points,
                   "noisy": [int(x) for x in args.noisy_events.split(",")] if args.noisy_events else clean_points}
    args.base_model = fp32_base(args.base_model)
    eval_size = args.eval_size or (60 if args.quick else 1000)
    tweets = read_tweets(args.data / "twitter_financial_news_sentiment" / "sent_train.csv")
    held, stream = split_tweets(tweets, eval_size, args.seed)
    fpb_train, fpb_dev = holdout_split(read_source(f"fpb:{args.data / 'financial_phrasebank' / 'fpb_train.txt'}"),
                                       0.1)
    if args.quick:
        fpb_train, fpb_dev = fpb_train[:300], fpb_dev[:100]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="beacon-feedback-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    train_spec = write_jsonl(work / "fpb_train.jsonl", fpb_train)
    dev_spec = write_jsonl(work / "fpb_dev.jsonl", fpb_dev)
    artifact, version, initial_s = train_initial(args, fpb_train, fpb_dev, dev_spec, work / "fpb-only")
    sets = {"tweets": [example_from_spans(t, None, label) for t, label in held], "fpb_dev": fpb_dev}
    baseline = scores(artifact, sets, device.type)
    ctx = {"work": work, "artifact": artifact, "version": version, "train_spec": train_spec, "dev_spec": dev_spec,
           "device": device.type, "stream": stream, "checkpoints": checkpoints, "sets": sets, "baseline": baseline,
           "retrain_timeout": 3600}
    rows: list[dict[str, Any]] = []
    noises = {"clean": 0.0, "noisy": args.noise}
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        rows += run_variant(name, noises[name], args, ctx)
    at = 300 if 300 in clean_points else clean_points[min(1, len(clean_points) - 1)]
    result = {"benchmark": "feedback_loop", "device": describe_device(device, use_bf16(device, "auto")),
              "quick": args.quick, "sizes": {"held_out_tweets": len(held), "stream_pool": len(stream),
                                             "fpb_train": len(fpb_train), "fpb_dev": len(fpb_dev)},
              "initial_model": {"version": version, "train_s": round(initial_s, 1)}, "baseline": baseline,
              "runs": rows, "targets": targets(rows, baseline, at), "workdir": str(work),
              "torch_threads": torch.get_num_threads()}
    table = [[r["variant"], str(r["events"]), str(r["status"]), f"{r['tweets']:.2f}",
              f"{r['tweets'] - baseline['tweets']:+.2f}", f"{r['fpb_dev']:.2f}",
              f"{r['fpb_dev'] - baseline['fpb_dev']:+.2f}",
              "" if "candidate" not in r else f"{r['candidate']['tweets']:.2f} / {r['candidate']['fpb_dev']:.2f}",
              "" if "gate_ok" not in r else str(r["gate_ok"])] for r in rows]
    emit(result, "Feedback loop: active model after each retrain (accuracy %)", table,
         ["variant", "events", "run", "tweets", "Δ", "FPB dev", "Δ", "candidate tw / fpb", "gate ok"], args.json)


if __name__ == "__main__":
    main()
