"""Batched, windowed inference over pre-split words: the engine under Analyzer, eval and training.

:class:`Predictor` returns raw logits per word (the first sub-token's, from the window that
owns it) and per document (sentiment: window logits averaged, weighted by each window's
owned share of the document). Temperatures are applied by the callers that need probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from models.device import autocast
from models.encoding import (
    Window,
    encode_words,
    first_token_positions,
    length_sorted_batches,
    make_windows,
    window_tensors,
)
from models.errors import ModelError
from models.network import BeaconModel


@dataclass
class DocLogits:
    """Raw logits for one document."""

    word_logits: torch.Tensor  # (words, ner labels), float32; zero rows where has_token is False
    has_token: list[bool]  # False for words the tokenizer dropped (zero-width characters...)
    sentiment_logits: torch.Tensor  # (sentiments,), float32


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Calibrated probabilities ``softmax(logits / T)`` along the last dimension."""
    return torch.softmax(logits.float() / max(float(temperature), 1e-3), dim=-1)


class Predictor:
    """Runs a :class:`BeaconModel` over batches of word lists. Safe to share between threads."""

    def __init__(
        self,
        model: BeaconModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int,
        device: torch.device,
        bf16: bool,
        overlap: int | None = None,
    ) -> None:
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise ModelError("the tokenizer has no [CLS]/[SEP] tokens; Beacon needs a BERT-style tokenizer")
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.device = device
        self.bf16 = bf16
        self.overlap = overlap
        self.pad_id = int(tokenizer.pad_token_id or 0)

    def windows(self, batch: Sequence[Sequence[str]]) -> list[Window]:
        encoded = encode_words(self.tokenizer, batch)
        return make_windows(
            encoded,
            cls_id=int(self.tokenizer.cls_token_id),  # type: ignore[arg-type]
            sep_id=int(self.tokenizer.sep_token_id),  # type: ignore[arg-type]
            max_length=self.max_length,
            overlap=self.overlap,
        )

    def run_windows(
        self, windows: Sequence[Window], batch_size: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(ner logits (positions, labels), sentiment logits) per window, float32 on CPU."""
        results: list[tuple[torch.Tensor, torch.Tensor]] = [None] * len(windows)  # type: ignore[list-item]
        batches = length_sorted_batches([len(w) for w in windows], max(1, batch_size))
        with torch.inference_mode():
            for indices in batches:
                chunk = [windows[i] for i in indices]
                input_ids, mask, casing = window_tensors(chunk, self.pad_id, self.device)
                with autocast(self.device, self.bf16):
                    out = self.model(input_ids, mask, casing)
                ner = out.ner_logits.float().cpu()
                sentiment = out.sentiment_logits.float().cpu()
                for row, i in enumerate(indices):
                    results[i] = (ner[row, : len(windows[i])], sentiment[row])
        return results

    def predict(self, batch: Sequence[Sequence[str]], batch_size: int = 32) -> list[DocLogits]:
        """Logits for each word list of ``batch`` (order kept)."""
        was_training = self.model.training
        self.model.eval()
        try:
            windows = self.windows(batch)
            outputs = self.run_windows(windows, batch_size)
        finally:
            self.model.train(was_training)
        num_labels = self.model.num_ner_labels
        docs = [
            DocLogits(
                torch.zeros(len(words), num_labels),
                [False] * len(words),
                torch.zeros(self.model.num_sentiments),
            )
            for words in batch
        ]
        shares = [0.0] * len(batch)
        for window, (ner, sentiment) in zip(windows, outputs, strict=True):
            doc = docs[window.doc]
            for word, pos in first_token_positions(window).items():
                doc.word_logits[word] = ner[pos]
                doc.has_token[word] = True
            share = float(max(window.own_end - window.own_start, 1))
            doc.sentiment_logits += share * sentiment
            shares[window.doc] += share
        for doc, share in zip(docs, shares, strict=True):
            doc.sentiment_logits /= max(share, 1.0)
        return docs


def word_tags(doc: DocLogits, labels: Sequence[str], temperature: float = 1.0) -> tuple[list[str], list[float]]:
    """Argmax tag and its calibrated probability per word ("O", 1.0 for token-less words)."""
    if not doc.has_token:
        return [], []
    probs = apply_temperature(doc.word_logits, temperature)
    best_p, best = probs.max(dim=-1)
    tags: list[str] = []
    scores: list[float] = []
    for i, ok in enumerate(doc.has_token):
        tags.append(labels[int(best[i])] if ok else "O")
        scores.append(float(best_p[i]) if ok else 1.0)
    return tags, scores
