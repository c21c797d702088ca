"""Shared helpers for the benchmarks: data paths, the peer models, tables and JSON output.

The benchmarks read ``../shared/data`` (relative to the repository root) unless told
otherwise, never copy it, and always print a JSON document and a readable table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(REPO))

from models.data import Example, holdout_split, read_source  # noqa: E402
from models.device import resolve_device, use_bf16  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--conll-train", default=None, help="conll:PATH (default: DATA/conll2003/eng.train)")
    parser.add_argument("--conll-dev", default=None, help="conll:PATH (default: DATA/conll2003/eng.testa)")
    parser.add_argument("--fpb", default=None, help="fpb:PATH (default: DATA/financial_phrasebank/fpb_train.txt)")
    parser.add_argument("--base-model", default="default", help="base encoder (default: packaged MiniLM)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--precision", default="auto", help="auto, bf16 or fp32 (Beacon and peer alike)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a CPU sanity run")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON result here")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    parser.add_argument("--seed", type=int, default=13)
    return parser


def setup(args: argparse.Namespace) -> tuple[torch.device, bool]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    return device, use_bf16(device, args.precision)


def specs(args: argparse.Namespace) -> dict[str, str]:
    data: Path = args.data
    return {
        "conll_train": args.conll_train or f"conll:{data / 'conll2003' / 'eng.train'}",
        "conll_dev": args.conll_dev or f"conll:{data / 'conll2003' / 'eng.testa'}",
        "fpb": args.fpb or f"fpb:{data / 'financial_phrasebank' / 'fpb_train.txt'}",
    }


def load_sets(args: argparse.Namespace) -> dict[str, list[Example]]:
    """conll_train, conll_dev, fpb_train (90%) and fpb_dev (the deterministic 10% holdout)."""
    paths = specs(args)
    missing = [p for p in paths.values() if not Path(p.split(":", 1)[1]).is_file()]
    if missing:
        raise SystemExit(f"data not found: {missing} (pass --data or the --conll-*/--fpb paths)")
    fpb_train, fpb_dev = holdout_split(read_source(paths["fpb"]), 0.1)
    return {
        "conll_train": read_source(paths["conll_train"]),
        "conll_dev": read_source(paths["conll_dev"]),
        "fpb_train": fpb_train,
        "fpb_dev": fpb_dev,
    }


_NO_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}]|'s|'S|n't|'re|'ve|'ll|'d|'m)(?=\s|$)")
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def detokenize(text: str) -> str:
    """``"Apple 's shares rose 5 % ."`` → ``"Apple's shares rose 5%."`` (good enough for timing)."""
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    return _NO_SPACE_AFTER.sub(r"\1", text)


def encoder_folder(base_model: str) -> str:
    from models.base import resolve_base_model

    return resolve_base_model(base_model)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def emit(result: dict[str, Any], title: str, rows: list[list[str]], header: list[str],
         json_path: Path | None) -> None:
    """Print the JSON document, then a table (Rich when available)."""
    text = json.dumps(result, indent=2, sort_keys=True, default=str)
    print(text)
    if json_path is not None:
        json_path.write_text(text + "\n", encoding="utf-8")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency, but stay useful without it
        print(title)
        for row in [header, *rows]:
            print(" | ".join(row))
        return
    table = Table(title=title)
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def describe_device(device: torch.device, bf16: bool) -> dict[str, Any]:
    info: dict[str, Any] = {"device": str(device), "bf16": bf16, "threads": torch.get_num_threads(),
                            "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    import transformers

    info["transformers"] = transformers.__version__
    return info
