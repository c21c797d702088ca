"""Training rows, multitask batch planning, collation and the loss.

Batching choice: examples are grouped by *task signature* (entities only, sentiment only,
both). Each group is shuffled, cut into chunks of ``batch_size * 50``, sorted by length inside
a chunk (little padding) and sliced into batches; then the batches of all groups are shuffled
together. So every batch is single-task (or "both" for examples carrying both labels), every
example is seen once per epoch, and each task gets steps in proportion to its data, spread
uniformly over the epoch: the smaller task never starves and never comes in one block.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from models.data import Example
from models.encoding import Window, WordTokenizer, make_windows
from models.labels import IGNORE_INDEX
from models.network import CASE_SPECIAL, BeaconOutput

CHUNK_BATCHES = 50


@dataclass
class Row:
    """One model input built from (a window of) an example, with its supervision."""

    input_ids: list[int]
    casing_ids: list[int]
    ner_labels: list[int]  # per position; IGNORE_INDEX where unsupervised
    ner_not: list[int]  # per position, a rejected label id; IGNORE_INDEX where none
    sentiment: int  # IGNORE_INDEX when absent
    not_sentiment: int  # IGNORE_INDEX when absent
    weight: float
    task: str  # "ner", "sentiment" or "both"


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    casing_ids: torch.Tensor
    ner_labels: torch.Tensor
    ner_not: torch.Tensor
    sentiment: torch.Tensor
    not_sentiment: torch.Tensor
    weights: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def _ids(values: Sequence[str | None] | None, n: int, vocab: dict[str, int]) -> list[int]:
    if not values:
        return [IGNORE_INDEX] * n
    return [vocab.get(v, IGNORE_INDEX) if v is not None else IGNORE_INDEX for v in values]


def _row(window: Window, ex: Example, label_ids: list[int], not_ids: list[int], share: float,
         sentiment_ids: dict[str, int]) -> Row:
    labels = [IGNORE_INDEX] * len(window)
    nots = [IGNORE_INDEX] * len(window)
    for word, pos in window.firsts:
        labels[pos] = label_ids[word]
        nots[pos] = not_ids[word]
    sentiment = sentiment_ids.get(ex.sentiment, IGNORE_INDEX) if ex.sentiment else IGNORE_INDEX
    not_sentiment = IGNORE_INDEX
    if sentiment == IGNORE_INDEX and ex.not_sentiment:
        not_sentiment = sentiment_ids.get(ex.not_sentiment, IGNORE_INDEX)
    has_ner = any(x != IGNORE_INDEX for x in labels) or any(x != IGNORE_INDEX for x in nots)
    has_sentiment = sentiment != IGNORE_INDEX or not_sentiment != IGNORE_INDEX
    task = "both" if has_ner and has_sentiment else ("ner" if has_ner else "sentiment")
    return Row(window.input_ids, window.casing_ids, labels, nots, sentiment, not_sentiment,
               float(ex.weight) * share, task if (has_ner or has_sentiment) else "")


def build_rows(
    examples: Sequence[Example],
    tokenizer: PreTrainedTokenizerBase,
    *,
    label2id: dict[str, int],
    sentiment2id: dict[str, int],
    max_length: int,
) -> list[Row]:
    """Rows for every example (long ones become several windows). Rows with no usable label
    (e.g. a tag set of only unknown types) are dropped."""
    words = WordTokenizer(tokenizer)
    windows = make_windows(words.encode([ex.words for ex in examples]), cls_id=words.cls_id, sep_id=words.sep_id,
                           max_length=max_length, overlap=0)
    per_doc: dict[int, list[Window]] = {}
    for window in windows:
        per_doc.setdefault(window.doc, []).append(window)
    rows: list[Row] = []
    for doc, doc_windows in per_doc.items():
        ex = examples[doc]
        label_ids = _ids(ex.tags, len(ex.words), label2id)
        not_ids = _ids(ex.not_tags, len(ex.words), label2id)
        total = sum(max(w.own_end - w.own_start, 1) for w in doc_windows)
        for window in doc_windows:
            share = max(window.own_end - window.own_start, 1) / total
            row = _row(window, ex, label_ids, not_ids, share, sentiment2id)
            if row.task:
                rows.append(row)
    return rows


def plan_batches(rows: Sequence[Row], batch_size: int, *, seed: int, epoch: int) -> list[list[int]]:
    """Row indices per batch for one epoch (see the module docstring). Same on every rank."""
    rng = random.Random(seed * 1_000_003 + epoch)
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.task, []).append(i)
    batches: list[list[int]] = []
    for task in sorted(groups):
        indices = groups[task]
        rng.shuffle(indices)
        chunk = batch_size * CHUNK_BATCHES
        for c in range(0, len(indices), chunk):
            part = sorted(indices[c : c + chunk], key=lambda i: len(rows[i].input_ids))
            batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def shard_batches(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This rank's batches; the list is padded (by repeating from the start) so every rank
    runs the same number of steps."""
    if world <= 1:
        return batches
    per_rank = -(-len(batches) // world)
    padded = batches + batches[: per_rank * world - len(batches)]
    return padded[rank::world]


def collate(rows: Sequence[Row], pad_id: int, device: torch.device) -> Batch:
    """Pad a batch to its longest row; three host→device copies in all."""
    width = max(len(r.input_ids) for r in rows)

    def pad(values: list[int], fill: int) -> list[int]:
        return values + [fill] * (width - len(values))

    grid = torch.tensor(
        [
            [pad(r.input_ids, pad_id) for r in rows],
            [pad([1] * len(r.input_ids), 0) for r in rows],
            [pad(r.casing_ids, CASE_SPECIAL) for r in rows],
            [pad(r.ner_labels, IGNORE_INDEX) for r in rows],
            [pad(r.ner_not, IGNORE_INDEX) for r in rows],
        ],
        dtype=torch.long,
    ).to(device, non_blocking=True)
    per_row = torch.tensor([[r.sentiment for r in rows], [r.not_sentiment for r in rows]], dtype=torch.long)
    per_row = per_row.to(device, non_blocking=True)
    weights = torch.tensor([r.weight for r in rows], dtype=torch.float32).to(device, non_blocking=True)
    return Batch(grid[0], grid[1], grid[2], grid[3], grid[4], per_row[0], per_row[1], weights)


def _log_not(logits: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """``log(1 - p(rejected))`` per row of ``logits`` (rejected clamped to a valid id)."""
    p = torch.softmax(logits, dim=-1).gather(-1, rejected.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.log1p(-p.clamp(max=1.0 - 1e-6))


def supervised_loss(
    logits: torch.Tensor, gold: torch.Tensor, rejected: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Mean over supervised items of ``weight * (-log p(gold))`` and ``weight * (-log(1 - p(rejected)))``.

    Items whose ``gold``/``rejected`` is IGNORE_INDEX contribute exactly nothing (no loss, no
    gradient). ``logits``: (..., classes); ``gold``/``rejected``/``weights``: (...).
    """
    logits = logits.float()
    has_gold = gold != IGNORE_INDEX
    has_rejected = rejected != IGNORE_INDEX
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), gold.reshape(-1), reduction="none",
                          ignore_index=IGNORE_INDEX).reshape(gold.shape)
    comp = -_log_not(logits, rejected)
    zero = torch.zeros_like(nll)
    total = (torch.where(has_gold, nll, zero) + torch.where(has_rejected, comp, zero)) * weights
    count = (has_gold.sum() + has_rejected.sum()).clamp(min=1)
    return total.sum() / count


def batch_loss(
    out: BeaconOutput, batch: Batch, *, ner_weight: float = 1.0, sentiment_weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, entity part, sentiment part). Both heads always enter the graph (DDP-safe)."""
    token_weights = batch.weights.unsqueeze(1).expand_as(batch.ner_labels)
    ner = supervised_loss(out.ner_logits, batch.ner_labels, batch.ner_not, token_weights)
    sentiment = supervised_loss(out.sentiment_logits, batch.sentiment, batch.not_sentiment, batch.weights)
    return ner_weight * ner + sentiment_weight * sentiment, ner.detach(), sentiment.detach()
