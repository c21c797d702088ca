"""Batched, windowed inference over pre-split words: the engine under Analyzer, eval and training.

Per word, the prediction is the first sub-token's, from the window that owns it; per
document, the sentiment logits are the windows' logits averaged, weighted by each window's
owned share of the document. Tags and their calibrated probabilities are computed on the
device, one batch at a time, and come back in one small transfer (a GPU is otherwise
starved by per-word host work). Raw word logits are kept only when asked (calibration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from models.cudagraphs import GraphRunner
from models.device import autocast
from models.encoding import Window, WordTokenizer, length_sorted_batches, make_windows, window_tensors
from models.network import BeaconModel

NO_TOKEN = -1


@dataclass
class DocOutput:
    """Predictions for one document."""

    tag_ids: list[int]  # per word: label id, NO_TOKEN when the tokenizer dropped the word
    tag_probs: list[float]  # per word: calibrated probability of that label (1.0 for NO_TOKEN)
    sentiment_logits: torch.Tensor  # (sentiments,), float32, CPU
    word_logits: torch.Tensor | None = None  # (words, labels) raw logits, when keep_logits

    @property
    def has_token(self) -> list[bool]:
        return [t != NO_TOKEN for t in self.tag_ids]

    def tags(self, labels: Sequence[str]) -> list[str]:
        """IOB2 tag per word ("O" for words without sub-tokens)."""
        return [labels[t] if t != NO_TOKEN else "O" for t in self.tag_ids]


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
        cuda_graphs: bool = False,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.words = WordTokenizer(tokenizer)
        self.max_length = max_length
        self.device = device
        self.bf16 = bf16
        self.overlap = overlap
        self.pad_id = self.words.pad_id
        self.graphs: GraphRunner | None = None
        if cuda_graphs and device.type == "cuda":
            self.graphs = GraphRunner(model, device, bf16=bf16, max_length=max_length)

    def windows(self, batch: Sequence[Sequence[str]]) -> list[Window]:
        return make_windows(
            self.words.encode(batch),
            cls_id=self.words.cls_id,
            sep_id=self.words.sep_id,
            max_length=self.max_length,
            overlap=self.overlap,
        )

    def predict(
        self,
        batch: Sequence[Sequence[str]],
        batch_size: int = 32,
        *,
        ner_temperature: float = 1.0,
        keep_logits: bool = False,
    ) -> list[DocOutput]:
        """Predictions for each word list of ``batch`` (order kept)."""
        windows = self.windows(batch)
        num_labels = self.model.num_ner_labels
        docs = [
            DocOutput(
                [NO_TOKEN] * len(words),
                [1.0] * len(words),
                torch.zeros(self.model.num_sentiments),
                torch.zeros(len(words), num_labels) if keep_logits else None,
            )
            for words in batch
        ]
        shares = [0.0] * len(batch)
        temperature = max(float(ner_temperature), 1e-3)
        was_training = self.model.training
        if was_training:
            self.model.eval()
        try:
            with torch.inference_mode():
                for indices in length_sorted_batches([len(w) for w in windows], max(1, batch_size)):
                    chunk = [windows[i] for i in indices]
                    self._run(chunk, docs, shares, temperature, keep_logits)
        finally:
            if was_training:
                self.model.train()
        for doc, share in zip(docs, shares, strict=True):
            doc.sentiment_logits /= max(share, 1.0)
        return docs

    def _run(
        self, chunk: list[Window], docs: list[DocOutput], shares: list[float], temperature: float, keep: bool
    ) -> None:
        input_ids, mask, casing = window_tensors(chunk, self.pad_id, self.device)
        out = self.graphs.run(input_ids, casing) if self.graphs is not None and mask is None else None
        if out is None:
            with autocast(self.device, self.bf16):
                out = self.model(input_ids, mask, casing)
        ner = out.ner_logits.float()
        best_p, best = torch.softmax(ner / temperature, dim=-1).max(dim=-1)
        packed = torch.cat([best.float(), best_p], dim=1).cpu()  # one transfer: (B, 2L)
        sentiment = out.sentiment_logits.float().cpu()
        raw = ner.cpu() if keep else None
        width = best.shape[1]
        tags_rows = packed[:, :width].long().tolist()
        prob_rows = packed[:, width:].tolist()
        for row, window in enumerate(chunk):
            doc = docs[window.doc]
            tags, probs = tags_rows[row], prob_rows[row]
            for word, pos in window.firsts:
                doc.tag_ids[word] = tags[pos]
                doc.tag_probs[word] = probs[pos]
            if raw is not None and doc.word_logits is not None and window.firsts:
                words = torch.tensor([w for w, _ in window.firsts])
                positions = torch.tensor([p for _, p in window.firsts])
                doc.word_logits[words] = raw[row, positions]
            share = float(max(window.own_end - window.own_start, 1))
            doc.sentiment_logits += share * sentiment[row]
            shares[window.doc] += share
