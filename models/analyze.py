"""Serving: texts in, entities and sentiment out, from one forward pass per window.

``Analyzer.load(artifact)`` reads everything (labels, calibration, encoder config) from the
artifact folder. ``analyze`` splits each text into words (:func:`models.data.split_words`),
runs length-bucketed batches under ``torch.inference_mode`` (bf16 autocast on CUDA and on
CPUs with native bf16), and maps word tags back to EXACT character offsets
(``text[e.start:e.end] == e.text``). Long texts use overlapping windows (see
:mod:`models.encoding`): nothing is truncated.

Pattern matches (tickers, money, percentages, e-mails, URLs) are merged with the model's
entities: a model entity lying inside a MONEY/PERCENT/EMAIL/URL match is dropped (the rule
is exact there, the model's tag on such a string is noise); TICKER matches live alongside
model entities (``$ACME`` is a ticker and may also be an ORG); exact duplicates (same span
and label) are kept once. Entities come sorted by (start, end). A model entity without a
single letter or digit (punctuation, emoji) is dropped: no name looks like that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from models.artifact import ArtifactMeta, load_artifact
from models.data import split_words
from models.device import resolve_device, use_bf16
from models.explain import Explanation, explain_sentiment
from models.labels import tags_to_spans
from models.network import BeaconModel
from models.patterns import PatternMatch, find_patterns
from models.predict import DocOutput, Predictor, apply_temperature

RULE_OWNED = frozenset({"MONEY", "PERCENT", "EMAIL", "URL"})


@dataclass
class Entity:
    text: str
    label: str
    start: int
    end: int
    score: float
    source: str  # "model" or "pattern"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sentiment:
    label: str
    score: float
    probs: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Analysis:
    text: str
    entities: list[Entity]
    sentiment: Sentiment
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "entities": [e.to_dict() for e in self.entities],
            "sentiment": self.sentiment.to_dict(),
            "model_version": self.model_version,
        }


def merge_entities(model_entities: Sequence[Entity], matches: Sequence[PatternMatch]) -> list[Entity]:
    """Model and pattern entities together (rules in the module docstring)."""
    owned = [(m.start, m.end) for m in matches if m.label in RULE_OWNED]
    kept = [e for e in model_entities if not any(s <= e.start and e.end <= t for s, t in owned)]
    kept += [Entity(m.text, m.label, m.start, m.end, 1.0, "pattern") for m in matches]
    seen: set[tuple[int, int, str]] = set()
    out: list[Entity] = []
    for entity in sorted(kept, key=lambda e: (e.start, e.end, e.source != "pattern", e.label)):
        key = (entity.start, entity.end, entity.label)
        if key not in seen:
            seen.add(key)
            out.append(entity)
    return out


class Analyzer:
    """A loaded artifact, ready to analyse texts. Safe to share between threads."""

    def __init__(
        self,
        model: BeaconModel,
        tokenizer: PreTrainedTokenizerBase,
        meta: ArtifactMeta,
        *,
        device: torch.device,
        bf16: bool,
        path: Path | None = None,
        cuda_graphs: bool = True,
    ) -> None:
        model.eval()
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta
        self.device = device
        self.path = path
        self._predictor = Predictor(
            model, tokenizer, max_length=meta.max_length, device=device, bf16=bf16, cuda_graphs=cuda_graphs
        )

    @classmethod
    def load(
        cls,
        source: str | Path | tuple[BeaconModel, PreTrainedTokenizerBase, ArtifactMeta],
        device: str | torch.device = "auto",
        precision: str = "auto",
        *,
        cuda_graphs: bool = True,
    ) -> Analyzer:
        """From an artifact folder, or from an already loaded ``(model, tokenizer, meta)``.

        On CUDA, single-message calls replay CUDA graphs (see :mod:`models.cudagraphs`).
        """
        target = device if isinstance(device, torch.device) else resolve_device(device)
        path: Path | None = None
        if isinstance(source, tuple):
            model, tokenizer, meta = source
            model.to(target)
        else:
            path = Path(source)
            model, tokenizer, meta = load_artifact(path, target)
        return cls(model, tokenizer, meta, device=target, bf16=use_bf16(target, precision), path=path,
                   cuda_graphs=cuda_graphs)

    # ------------------------------------------------------------------ metadata

    @property
    def version(self) -> str:
        return self.meta.model_version

    @property
    def labels(self) -> list[str]:
        """Entity labels (IOB2), in head order."""
        return list(self.meta.ner_labels)

    @property
    def sentiment_labels(self) -> list[str]:
        return list(self.meta.sentiment_labels)

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.meta.metrics)

    @property
    def temperatures(self) -> dict[str, float]:
        return {"ner": self.meta.temperature("ner"), "sentiment": self.meta.temperature("sentiment")}

    @property
    def predictor(self) -> Predictor:
        return self._predictor

    # ------------------------------------------------------------------ inference

    def analyze(self, texts: Sequence[str], batch_size: int = 32) -> list[Analysis]:
        """One :class:`Analysis` per text, in the order given."""
        spans = [split_words(text) for text in texts]
        words = [[text[s:e] for s, e in sp] for text, sp in zip(texts, spans, strict=True)]
        docs = self._predictor.predict(words, batch_size=batch_size, ner_temperature=self.meta.temperature("ner"))
        if not docs:
            return []
        logits = torch.stack([doc.sentiment_logits for doc in docs])
        probs = apply_temperature(logits, self.meta.temperature("sentiment")).tolist()
        return [
            Analysis(text, self._entities(text, sp, doc), self._sentiment(p), self.version)
            for text, sp, doc, p in zip(texts, spans, docs, probs, strict=True)
        ]

    def _entities(self, text: str, spans: list[tuple[int, int]], doc: DocOutput) -> list[Entity]:
        entities = []
        if any(t > 0 for t in doc.tag_ids):  # label 0 is "O": most words, many texts
            scores = doc.tag_probs
            for first, last, label in tags_to_spans(doc.tags(self.meta.ner_labels)):
                start, end = spans[first][0], spans[last - 1][1]
                if not any(ch.isalnum() for ch in text[start:end]):
                    continue  # a name has a letter or digit: lone symbols and emoji are never entities
                score = sum(scores[first:last]) / (last - first)
                entities.append(Entity(text[start:end], label, start, end, round(score, 6), "model"))
        matches = find_patterns(text)
        return merge_entities(entities, matches) if matches else entities

    def _sentiment(self, probs: list[float]) -> Sentiment:
        labels = self.meta.sentiment_labels
        best = max(range(len(probs)), key=probs.__getitem__)
        rounded = {label: round(p, 6) for label, p in zip(labels, probs, strict=True)}
        return Sentiment(labels[best], round(probs[best], 6), rounded)

    def warmup(self) -> int:
        """Prepare for traffic: run the model once, and on CUDA capture the single-message graphs.

        Returns the number of CUDA graphs ready (0 on CPU). Call once after loading, e.g. at startup.
        """
        self.analyze(["Beacon warms up.", ""])
        graphs = self._predictor.graphs
        return graphs.warmup() if graphs is not None else 0

    def predict_words(self, batch: Sequence[Sequence[str]], batch_size: int = 32) -> list[list[str]]:
        """IOB2 tags for pre-split words (the first sub-token's prediction per word)."""
        docs = self._predictor.predict(batch, batch_size=batch_size)
        return [doc.tags(self.meta.ner_labels) for doc in docs]

    def explain(self, text: str, top_k: int = 10, steps: int = 24) -> Explanation:
        """The words that pushed the sentiment decision, with signed weights (integrated gradients)."""
        return explain_sentiment(
            self._predictor,
            text,
            labels=self.meta.sentiment_labels,
            temperature=self.meta.temperature("sentiment"),
            top_k=top_k,
            steps=steps,
        )
