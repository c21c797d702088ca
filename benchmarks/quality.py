"""Dev-set quality: Beacon (one multitask model, casing on and off) vs the Trainer peer.

Train: CoNLL-2003 eng.train + Financial PhraseBank minus a deterministic 10% holdout.
Dev: CoNLL eng.testa (NER F1) and the FPB 10% (sentiment accuracy / macro-F1 / ECE).
All three models start from the same encoder and are trained in this run.

    python benchmarks/quality.py [--device cuda] [--quick]
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

from common import base_parser, describe_device, emit, encoder_folder, load_sets, setup
from peer import PeerSettings, eval_ner_peer, eval_sentiment_peer, train_ner_peer, train_sentiment_peer

from models.analyze import Analyzer
from models.labels import build_label_list, entity_types
from models.scoring import evaluate_examples
from models.train import TrainConfig, train


class _PrintLog:
    def info(self, event: str, **kw: Any) -> None:
        if event in ("train.epoch", "train.start"):
            print(event, {k: v for k, v in kw.items() if k != "version"}, flush=True)


def run_beacon(sets: dict[str, list[Any]], casing: bool, args: Any, out: Path) -> dict[str, Any]:
    config = TrainConfig(base_model=args.base_model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         device=args.device, precision=args.precision, max_length=args.max_length,
                         casing=casing, seed=args.seed, patience=0)
    dev = {"conll_dev": sets["conll_dev"], "fpb_dev": sets["fpb_dev"]}
    started = time.perf_counter()
    results = list(train(config, sets["conll_train"] + sets["fpb_train"], dev, out_dir=out, log=_PrintLog(),
                         progress=not args.quick))
    seconds = time.perf_counter() - started
    analyzer = Analyzer.load(out, args.device, args.precision)
    return {
        "ner": evaluate_examples(analyzer, sets["conll_dev"]),
        "sentiment": evaluate_examples(analyzer, sets["fpb_dev"]),
        "train_seconds": round(seconds, 1),
        "best_epoch": analyzer.metrics.get("epoch"),
        "epochs": [{"epoch": r.epoch, "loss": round(r.train_loss, 4), "score": r.score} for r in results],
    }


def run_peer(sets: dict[str, list[Any]], args: Any, device: Any, bf16: bool) -> dict[str, Any]:
    encoder = encoder_folder(args.base_model)
    labels = build_label_list(entity_types(sets["conll_train"]))
    settings = PeerSettings(lr=5e-5, batch_size=32, epochs=args.peer_epochs, max_length=128, bf16=bf16,
                            seed=args.seed)
    started = time.perf_counter()
    ner_model, ner_tok, ner_metrics = train_ner_peer(encoder, sets["conll_train"], labels, settings, device)
    sent_model, sent_tok, sent_metrics = train_sentiment_peer(encoder, sets["fpb_train"], settings, device)
    seconds = time.perf_counter() - started
    return {
        "ner": eval_ner_peer(ner_model, ner_tok, sets["conll_dev"], labels, 128, device, bf16),
        "sentiment": eval_sentiment_peer(sent_model, sent_tok, sets["fpb_dev"], 128, device, bf16),
        "train_seconds": round(seconds, 1),
        "trainer_metrics": {"ner": ner_metrics, "sentiment": sent_metrics},
    }


def _summary(r: dict[str, Any]) -> dict[str, float]:
    return {"ner_f1": r["ner"]["f1"], "sentiment_accuracy": r["sentiment"]["accuracy"],
            "sentiment_macro_f1": r["sentiment"]["macro_f1"], "sentiment_ece": r["sentiment"]["ece"]}


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--peer-epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--skip-casing-off", action="store_true", help="skip the casing-off Beacon run")
    parser.add_argument("--train-limit", type=int, default=0,
                        help="a deterministic sample of N CoNLL and N FPB training rows (CPU runs)")
    args = parser.parse_args()
    device, bf16 = setup(args)
    sets = load_sets(args)
    if args.quick:
        sets = {"conll_train": sets["conll_train"][:160], "conll_dev": sets["conll_dev"][:80],
                "fpb_train": sets["fpb_train"][:96], "fpb_dev": sets["fpb_dev"][:48]}
        args.epochs, args.peer_epochs = 1, 1.0
    if args.train_limit:
        for key in ("conll_train", "fpb_train"):
            sets[key] = sorted(sets[key], key=lambda ex: hashlib.sha1(ex.text.encode()).hexdigest())[:args.train_limit]
    sizes = {k: len(v) for k, v in sets.items()}
    print("sizes", sizes, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"beacon": run_beacon(sets, True, args, Path(tmp) / "on")}
        if not args.skip_casing_off:
            runs["beacon_casing_off"] = run_beacon(sets, False, args, Path(tmp) / "off")
    runs["peer"] = run_peer(sets, args, device, bf16)
    summary = {name: _summary(r) for name, r in runs.items()}
    deltas = {f"beacon_minus_peer_{k}": round(summary["beacon"][k] - summary["peer"][k], 6) for k in summary["peer"]}
    if "beacon_casing_off" in summary:
        deltas.update({f"casing_on_minus_off_{k}": round(summary["beacon"][k] - summary["beacon_casing_off"][k], 6)
                       for k in summary["beacon"]})
    result = {"benchmark": "quality", "quick": args.quick, "train_limit": args.train_limit,
              "sizes": sizes, "env": describe_device(device, bf16),
              "summary": summary, "deltas": deltas, "runs": runs}
    header = ["model", "NER F1 (conll dev)", "sent. acc (fpb 10%)", "sent. macro-F1", "ECE", "train s"]
    keys = ["ner_f1", "sentiment_accuracy", "sentiment_macro_f1", "sentiment_ece"]
    rows = [[name, *(f"{s[k]:.4f}" for k in keys), str(runs[name]["train_seconds"])] for name, s in summary.items()]
    rows.append(["Δ beacon − peer", *(f"{deltas[f'beacon_minus_peer_{k}']:+.4f}" for k in keys), ""])
    if "beacon_casing_off" in summary:
        rows.append(["Δ casing on − off", *(f"{deltas[f'casing_on_minus_off_{k}']:+.4f}" for k in keys), ""])
    emit(result, "Beacon vs peer: dev quality", rows, header, args.json)


if __name__ == "__main__":
    main()
