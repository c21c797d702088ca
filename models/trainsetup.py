"""Training set-up: seeding, the starting network, the optimiser and the schedule."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from models.artifact import ArtifactMeta, load_artifact
from models.base import resolve_base_model
from models.data import SENTIMENTS, Example
from models.errors import ModelError, TrainingError
from models.labels import build_label_list, entity_types, extend_label_list
from models.network import BeaconModel


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Start:
    """The network to train, its tokenizer and labels, and where it came from."""

    model: BeaconModel
    tokenizer: PreTrainedTokenizerBase
    ner_labels: list[str]
    sentiment_labels: list[str]
    parent: ArtifactMeta | None


def starting_point(
    examples: Sequence[Example],
    *,
    base_model: str,
    casing: bool,
    pooling: str,
    init_from: str | None,
) -> Start:
    """A fresh network on the base encoder, or a trained artifact whose entity head grows
    to cover the new entity types (old rows kept, new labels appended)."""
    types = entity_types(examples)
    if init_from is not None:
        model, tokenizer, meta = load_artifact(init_from, "cpu")
        labels = extend_label_list(meta.ner_labels, types)
        model.grow_ner_head(len(labels))
        if list(meta.sentiment_labels) != list(SENTIMENTS):
            raise TrainingError(f"{init_from}: sentiment labels {meta.sentiment_labels} differ from {SENTIMENTS}")
        return Start(model, tokenizer, labels, list(meta.sentiment_labels), meta)
    labels = build_label_list(types)
    resolved = resolve_base_model(base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer of base model {resolved!r}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"base model {resolved!r} has no fast tokenizer (Beacon needs word offsets)")
    model = BeaconModel.from_pretrained_encoder(resolved, len(labels), casing=casing, pooling=pooling)
    return Start(model, tokenizer, labels, list(SENTIMENTS), None)


def make_optimizer(
    model: torch.nn.Module, *, lr: float, weight_decay: float, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and normalisation weights (1-d parameters)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, fused=fused)


def linear_schedule(optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_ratio: float) -> LambdaLR:
    """Linear warm-up to the peak rate over ``warmup_ratio`` of the steps, then linear decay to 0."""
    total = max(1, total_steps)
    warmup = round(total * max(0.0, warmup_ratio))

    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return LambdaLR(optimizer, factor)
