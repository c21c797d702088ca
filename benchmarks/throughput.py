"""Serving speed: Beacon ``analyze`` (entities + sentiment, one pass) vs two HF pipelines.

2,000 texts: 1,000 detokenised CoNLL dev sentences + 1,000 FPB sentences. The peer is
``pipeline("token-classification", aggregation_strategy="simple")`` + ``pipeline("text-classification")``
at batch size 32 on the SAME encoder weights (heads random: speed does not depend on training).
Same process, one after the other, alternating order, ≥ 3 rounds; medians reported.

    python benchmarks/throughput.py [--artifact PATH] [--device cuda] [--quick]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from common import base_parser, describe_device, detokenize, emit, load_sets, median, percentile, setup
from peer import build_ner, build_sentiment
from transformers import AutoTokenizer, pipeline

from models.analyze import Analyzer
from models.artifact import ArtifactMeta, new_model_version, save_artifact
from models.base import resolve_base_model
from models.data import SENTIMENTS
from models.labels import build_label_list
from models.network import BeaconModel

CONLL_LABELS = build_label_list(["LOC", "MISC", "ORG", "PER"])


def untrained_artifact(base_model: str, folder: Path) -> Path:
    """A Beacon artifact on the base encoder with fresh heads (CoNLL labels)."""
    encoder = resolve_base_model(base_model)
    model = BeaconModel.from_pretrained_encoder(encoder, len(CONLL_LABELS))
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    meta = ArtifactMeta(new_model_version(), list(CONLL_LABELS), list(SENTIMENTS), {}, max_length=128)
    return save_artifact(folder, model, tokenizer, meta)


def peer_pipelines(analyzer: Analyzer, folder: Path, device: torch.device, dtype: torch.dtype) -> Callable[..., Any]:
    """The two pipelines on the artifact's encoder weights; returns ``run(texts, batch_size)``."""
    analyzer.model.encoder.save_pretrained(str(folder))
    analyzer.tokenizer.save_pretrained(str(folder))
    ner_model = build_ner(str(folder), analyzer.labels).to(device, dtype).eval()
    sent_model = build_sentiment(str(folder)).to(device, dtype).eval()
    ner = pipeline("token-classification", model=ner_model, tokenizer=analyzer.tokenizer,
                   aggregation_strategy="simple", device=device)
    cls = pipeline("text-classification", model=sent_model, tokenizer=analyzer.tokenizer, device=device)

    def run(texts: Sequence[str] | str, batch_size: int = 32) -> Any:
        if isinstance(texts, str):
            return ner(texts), cls(texts)
        return ner(list(texts), batch_size=batch_size), cls(list(texts), batch_size=batch_size)

    return run


def texts_for(args: Any) -> list[str]:
    sets = load_sets(args)
    n = 100 if args.quick else 1000
    conll = [detokenize(ex.text) for ex in sets["conll_dev"] if ex.text.strip()][:n]
    fpb = [detokenize(ex.text) for ex in sets["fpb_train"] + sets["fpb_dev"]][:n]
    return conll + fpb


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--artifact", type=Path, default=None, help="a Beacon artifact (default: untrained)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--peer-dtype", choices=["fp32", "bf16"], default="fp32",
                        help="the peer's weights (pipelines default to fp32)")
    args = parser.parse_args()
    device, bf16 = setup(args)
    texts = texts_for(args)
    rounds = max(3, args.rounds)
    n_latency = 20 if args.quick else args.latency_samples
    dtype = torch.bfloat16 if args.peer_dtype == "bf16" else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        artifact = args.artifact or untrained_artifact(args.base_model, Path(tmp) / "artifact")
        analyzer = Analyzer.load(artifact, device, args.precision)
        peer = peer_pipelines(analyzer, Path(tmp) / "peer", device, dtype)

    def beacon_run(xs: Sequence[str]) -> Any:
        return analyzer.analyze(xs, batch_size=args.batch_size)

    def peer_run(xs: Sequence[str]) -> Any:
        return peer(xs, batch_size=args.batch_size)

    started = time.perf_counter()
    graphs = analyzer.warmup()  # the product's start-up step: on CUDA it captures the single-message graphs
    warmup_seconds = time.perf_counter() - started
    for fn in (beacon_run, peer_run):  # warm-up: every batch shape once, and single messages
        fn(texts)
    for t in texts[:: max(1, len(texts) // 32)]:
        analyzer.analyze([t])
        peer(t)
    beacon_times: list[float] = []
    peer_times: list[float] = []
    for r in range(rounds):
        order = [("beacon", beacon_run), ("peer", peer_run)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            seconds = timed(lambda fn=fn: fn(texts))
            (beacon_times if name == "beacon" else peer_times).append(seconds)
            print(f"round {r + 1} {name}: {len(texts) / seconds:.1f} msgs/s", flush=True)
    step = max(1, len(texts) // n_latency)
    sample = texts[::step][:n_latency]
    beacon_lat = [timed(lambda t=t: analyzer.analyze([t])) * 1000 for t in sample]
    peer_lat = [timed(lambda t=t: peer(t)) * 1000 for t in sample]
    b_rate, p_rate = len(texts) / median(beacon_times), len(texts) / median(peer_times)
    stats = {
        "beacon": {"msgs_per_s": round(b_rate, 1), "p50_ms": round(median(beacon_lat), 2),
                   "p99_ms": round(percentile(beacon_lat, 99), 2), "round_seconds": beacon_times},
        "peer": {"msgs_per_s": round(p_rate, 1), "p50_ms": round(median(peer_lat), 2),
                 "p99_ms": round(percentile(peer_lat, 99), 2), "round_seconds": peer_times},
    }
    ratios = {"throughput_x": round(b_rate / p_rate, 2),
              "p50_fraction": round(median(beacon_lat) / median(peer_lat), 3),
              "p99_fraction": round(percentile(beacon_lat, 99) / percentile(peer_lat, 99), 3)}
    targets = {"throughput_at_least_4x": ratios["throughput_x"] >= 4.0,
               "p50_at_most_one_third": ratios["p50_fraction"] <= 1 / 3}
    result = {"benchmark": "throughput", "quick": args.quick, "texts": len(texts), "rounds": rounds,
              "latency_samples": len(sample), "batch_size": args.batch_size, "peer_dtype": args.peer_dtype,
              "artifact": str(args.artifact) if args.artifact else "untrained (base encoder, fresh heads)",
              "beacon_warmup": {"seconds": round(warmup_seconds, 2), "cuda_graphs": graphs,
                                "graph_error": analyzer.predictor.graphs.error if analyzer.predictor.graphs else None},
              "env": describe_device(device, bf16), "stats": stats, "ratios": ratios, "targets": targets}
    header = ["", "msgs/s (median)", "p50 ms", "p99 ms"]
    rows = [[name, f"{s['msgs_per_s']:.1f}", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}"] for name, s in stats.items()]
    rows.append(["beacon / peer", f"{ratios['throughput_x']:.2f}x", f"{ratios['p50_fraction']:.3f}",
                 f"{ratios['p99_fraction']:.3f}"])
    emit(result, "Beacon analyze vs HF pipelines", rows, header, args.json)


if __name__ == "__main__":
    main()
