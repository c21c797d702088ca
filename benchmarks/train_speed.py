"""Training speed: Beacon samples/s vs the Trainer peer (same encoder, data, batch size).

Short runs of N optimiser steps. Beacon trains ONE multitask model on CoNLL + FPB; the peer
trains its two models (token classification on CoNLL, sequence classification on FPB),
with steps split in proportion to the data, as Beacon's batch plan does. Samples/s count
training sequences per second of training (model loading and evaluation excluded).

    python benchmarks/train_speed.py [--steps 200] [--device cuda] [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from common import base_parser, describe_device, emit, encoder_folder, load_sets, setup
from peer import PeerSettings, train_ner_peer, train_sentiment_peer

from models.labels import build_label_list, entity_types
from models.train import TrainConfig, train


class _Quiet:
    def info(self, event: str, **kw: Any) -> None:
        pass


def beacon_speed(sets: dict[str, list[Any]], args: Any) -> dict[str, Any]:
    config = TrainConfig(base_model=args.base_model, epochs=10_000, batch_size=args.batch_size, lr=5e-5,
                         device=args.device, precision=args.precision, max_length=args.max_length,
                         max_steps=args.steps, seed=args.seed, patience=0)
    with tempfile.TemporaryDirectory() as tmp:
        results = list(train(config, sets["conll_train"] + sets["fpb_train"], {}, out_dir=Path(tmp),
                             log=_Quiet(), progress=False))
    steps = sum(r.steps for r in results)
    seconds = sum(r.seconds for r in results)
    samples = sum(r.samples_per_s * r.seconds for r in results)
    return {"steps": steps, "seconds": round(seconds, 3), "samples_per_s": round(samples / seconds, 2)}


def peer_speed(sets: dict[str, list[Any]], args: Any, device: Any, bf16: bool) -> dict[str, Any]:
    encoder = encoder_folder(args.base_model)
    labels = build_label_list(entity_types(sets["conll_train"]))
    n_ner, n_sent = len(sets["conll_train"]), len(sets["fpb_train"])
    ner_steps = max(1, round(args.steps * n_ner / (n_ner + n_sent)))
    sent_steps = max(1, args.steps - ner_steps)
    out: dict[str, Any] = {}
    for task, steps in (("ner", ner_steps), ("sentiment", sent_steps)):
        settings = PeerSettings(batch_size=args.batch_size, max_length=args.max_length, max_steps=steps,
                                bf16=bf16, seed=args.seed)
        if task == "ner":
            _, _, metrics = train_ner_peer(encoder, sets["conll_train"], labels, settings, device)
        else:
            _, _, metrics = train_sentiment_peer(encoder, sets["fpb_train"], settings, device)
        out[task] = {"steps": int(metrics["steps"]), "seconds": round(metrics["train_runtime"], 3),
                     "samples_per_s": round(metrics["steps"] * args.batch_size / metrics["train_runtime"], 2)}
    seconds = out["ner"]["seconds"] + out["sentiment"]["seconds"]
    samples = (out["ner"]["steps"] + out["sentiment"]["steps"]) * args.batch_size
    out["combined"] = {"steps": out["ner"]["steps"] + out["sentiment"]["steps"], "seconds": round(seconds, 3),
                       "samples_per_s": round(samples / seconds, 2)}
    return out


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    device, bf16 = setup(args)
    sets = load_sets(args)
    if args.quick:
        args.steps = min(args.steps, 6)
    # Two rounds, alternating; the first warms the CUDA context, kernels and per-shape GEMM
    # heuristics for both (whoever runs second would otherwise inherit the other's warm-up).
    rounds = [(beacon_speed(sets, args), peer_speed(sets, args, device, bf16)) for _ in range(2)]
    beacon, peer = rounds[-1]
    ratio = round(beacon["samples_per_s"] / peer["combined"]["samples_per_s"], 2)
    result = {"benchmark": "train_speed", "quick": args.quick, "batch_size": args.batch_size,
              "max_length": args.max_length, "env": describe_device(device, bf16), "beacon": beacon, "peer": peer,
              "beacon_over_peer": ratio, "warmup_round": {"beacon": rounds[0][0], "peer": rounds[0][1]}}
    header = ["", "steps", "train s", "samples/s"]
    rows = [[name, str(v["steps"]), f"{v['seconds']:.2f}", f"{v['samples_per_s']:.1f}"]
            for name, v in [("beacon (multitask)", beacon), *((f"peer {k}", v) for k, v in peer.items())]]
    rows.append(["beacon / peer", "", "", f"{ratio:.2f}x"])
    emit(result, "Training speed: Beacon vs Trainer", rows, header, args.json)


if __name__ == "__main__":
    main()
