#!/usr/bin/env bash
# One short, self-contained GPU training run: CoNLL-2003 train + FPB train, ONE epoch, through Beacon's
# own training loop (models.train; bf16 autocast on CUDA). Reports samples/s, tokens/s and the share of the
# GPU's dense bf16 peak reached, with FLOPs estimated as 6 x parameters x tokens (H200/H100: 989 TFLOP/s).
#
#   benchmarks/gpu_retrain.sh [--data DIR] [--base-model NAME|PATH] [--batch-size N] [--max-steps N]
#                             [--device cuda|cpu] [--peak-tflops X] [--json FILE]
#
# Needs only python3 with torch, transformers and safetensors (PYTHONPATH=. is set here; no install).
# seqeval missing: a stub is put on the path (this run scores nothing, it only trains). A base model stored
# in fp16/bf16 is converted to an fp32 copy first, so training keeps fp32 master weights.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if ! python3 -c "import seqeval" 2>/dev/null; then
  stub=$(mktemp -d)
  mkdir -p "$stub/seqeval"
  printf '' >"$stub/seqeval/__init__.py"
  printf 'class IOB2:\n    pass\n\n\nclass Entities:\n    def __init__(self, *a, **k):\n        raise RuntimeError("seqeval is not installed: NER scoring is unavailable in this run")\n' \
    >"$stub/seqeval/scheme.py"
  export PYTHONPATH="$PYTHONPATH:$stub"
  echo "note: seqeval missing, stubbed (training speed only, no NER scoring)" >&2
fi
exec python3 - "$@" <<'PY'
import argparse, json, os, sys, tempfile, time
from pathlib import Path

import torch

from models.base import resolve_base_model
from models.data import read_source
from models.features import build_rows
from models.labels import build_label_list, entity_types
from models.network import BeaconModel
from models.train import TrainConfig, train

p = argparse.ArgumentParser()
p.add_argument("--data", type=Path, default=Path("../shared/data"))
p.add_argument("--base-model", default="default")
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--max-length", type=int, default=128)
p.add_argument("--max-steps", type=int, default=None)
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H200/H100 SXM: 989)")
p.add_argument("--json", type=Path, default=None)
args = p.parse_args()


def fp32_base(name: str) -> str:
    """The base folder, or an fp32 copy of it when its weights are stored in half precision."""
    folder = Path(resolve_base_model(name))
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return str(folder)
    from safetensors import safe_open
    from safetensors.torch import save_file
    with safe_open(str(weights), "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    if all(t.dtype == torch.float32 for t in tensors.values() if t.is_floating_point()):
        return str(folder)
    copy = Path(tempfile.mkdtemp(prefix="base32-"))
    for item in folder.iterdir():
        if item.is_file() and item.name != "model.safetensors":
            (copy / item.name).write_bytes(item.read_bytes())
    save_file({k: (t.float() if t.is_floating_point() else t) for k, t in tensors.items()}, str(copy / "model.safetensors"),
              metadata={"format": "pt"})
    print(f"note: {weights} holds {next(iter(tensors.values())).dtype} weights; training from an fp32 copy", file=sys.stderr)
    return str(copy)


class Log:
    def info(self, event, **kw):
        if event in ("train.start", "train.epoch"):
            print(json.dumps({"event": event, **kw}, default=str), file=sys.stderr)


conll = read_source(f"conll:{args.data / 'conll2003' / 'eng.train'}")
fpb = read_source(f"fpb:{args.data / 'financial_phrasebank' / 'fpb_train.txt'}")
examples = conll + fpb
base = fp32_base(args.base_model)
labels = build_label_list(entity_types(examples))
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(base)
rows = build_rows(examples, tokenizer, label2id={l: i for i, l in enumerate(labels)},
                  sentiment2id={"negative": 0, "neutral": 1, "positive": 2}, max_length=args.max_length)
tokens = sum(len(r.input_ids) for r in rows)
probe = BeaconModel.from_pretrained_encoder(base, len(labels))
params = sum(p.numel() for p in probe.parameters())
embedding = sum(p.numel() for n, p in probe.named_parameters() if "embeddings" in n)
del probe
config = TrainConfig(base_model=base, epochs=1, batch_size=args.batch_size, lr=5e-5, device=args.device,
                     max_length=args.max_length, max_steps=args.max_steps, patience=0)
if args.device.startswith("cuda"):
    torch.cuda.reset_peak_memory_stats()
with tempfile.TemporaryDirectory() as out:
    wall = time.perf_counter()
    (result,) = list(train(config, examples, {}, out_dir=Path(out), log=Log(), progress=False))
    wall = time.perf_counter() - wall
share = 1.0 if args.max_steps is None else min(1.0, result.steps * args.batch_size / len(rows))
seconds = result.seconds
done_tokens = tokens * share
flops = 6 * params * done_tokens
achieved = flops / seconds / 1e12
report = {
    "benchmark": "gpu_retrain", "device": args.device,
    "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
    "torch": torch.__version__, "python": sys.version.split()[0],
    "examples": {"conll_train": len(conll), "fpb_train": len(fpb), "rows": len(rows)},
    "tokens_per_epoch": tokens, "params": params, "non_embedding_params": params - embedding,
    "batch_size": args.batch_size, "max_length": args.max_length, "steps": result.steps,
    "train_seconds": round(seconds, 2), "wall_seconds_incl_load_and_save": round(wall, 2),
    "samples_per_s": round(result.samples_per_s, 1), "tokens_per_s": round(done_tokens / seconds, 1),
    "train_loss": round(result.train_loss, 4),
    "achieved_tflops_6NT": round(achieved, 2), "peak_bf16_tflops": args.peak_tflops,
    "share_of_peak": round(achieved / args.peak_tflops, 5),
    "share_of_peak_non_embedding": round(6 * (params - embedding) * done_tokens / seconds / 1e12 / args.peak_tflops, 5),
    "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if args.device.startswith("cuda") else None,
}
text = json.dumps(report, indent=2)
print(text)
if args.json:
    args.json.write_text(text + "\n")
print(f"\n{report['samples_per_s']} samples/s, {report['tokens_per_s']:.0f} tokens/s, "
      f"{report['achieved_tflops_6NT']} TFLOP/s = {report['share_of_peak'] * 100:.2f}% of the {args.peak_tflops:g} TFLOP/s "
      f"bf16 peak ({report['steps']} steps, {report['train_seconds']} s)")
PY
