"""The network: one transformer encoder shared by an entity head and a sentiment head.

The default encoder is uncased, so it cannot see capitalisation, the strongest cue for
names. A small learned *casing embedding* (one of :data:`NUM_CASING` classes per sub-token,
computed from the ORIGINAL word) is added to the word embeddings before the encoder adds
position and token-type embeddings. It starts near zero, so training begins from the
pretrained encoder's behaviour, and it can be switched off (``casing=False``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from models.errors import ModelError

# Casing classes of a word (every sub-token of a word gets the word's class).
CASE_SPECIAL = 0  # [CLS], [SEP], padding
CASE_LOWER = 1
CASE_TITLE = 2
CASE_UPPER = 3
CASE_MIXED = 4
CASE_DIGIT = 5
CASE_PUNCT = 6
CASE_OTHER = 7
NUM_CASING = 8

POOLINGS = ("mean", "cls")


@lru_cache(maxsize=1 << 16)
def casing_feature(word: str) -> int:
    """The casing class of ``word`` (see the ``CASE_*`` constants)."""
    if not word:
        return CASE_OTHER
    cased = [c for c in word if c.lower() != c.upper()]
    if not cased:
        if any(c.isdigit() for c in word):
            return CASE_DIGIT
        if not any(c.isalnum() for c in word):
            return CASE_PUNCT
        return CASE_OTHER
    if all(c.islower() for c in cased):
        return CASE_LOWER
    if len(cased) > 1 and all(c.isupper() for c in cased):
        return CASE_UPPER
    if cased[0].isupper() and all(c.islower() for c in cased[1:]):
        return CASE_TITLE
    return CASE_MIXED


class BeaconOutput(NamedTuple):
    """Both heads' logits from one forward pass."""

    ner_logits: torch.Tensor  # (batch, tokens, ner labels)
    sentiment_logits: torch.Tensor  # (batch, sentiments)


def encoder_config_from_dict(values: dict[str, Any]) -> PretrainedConfig:
    """Rebuild an encoder config saved with ``config.to_dict()`` (no network, no base folder)."""
    values = dict(values)
    model_type = values.pop("model_type", None)
    if not model_type:
        raise ModelError("the saved encoder config has no model_type")
    for key in ("transformers_version", "_name_or_path", "architectures"):
        values.pop(key, None)
    try:
        return AutoConfig.for_model(model_type, **values)
    except ValueError as exc:
        raise ModelError(f"cannot rebuild encoder config of type {model_type!r}: {exc}") from exc


class BeaconModel(nn.Module):
    """Shared encoder + token-classification head + sequence-classification head."""

    def __init__(
        self,
        encoder_config: PretrainedConfig,
        num_ner_labels: int,
        *,
        num_sentiments: int = 3,
        casing: bool = True,
        pooling: str = "mean",
        encoder: PreTrainedModel | None = None,
    ) -> None:
        super().__init__()
        if num_ner_labels < 1 or num_sentiments < 2:
            raise ModelError(f"bad head sizes: ner={num_ner_labels} sentiment={num_sentiments}")
        if pooling not in POOLINGS:
            raise ModelError(f"unknown pooling {pooling!r} (use one of {POOLINGS})")
        self.encoder: PreTrainedModel = (
            encoder if encoder is not None else AutoModel.from_config(encoder_config)
        )
        self.encoder.float()  # checkpoints/configs may say fp16/bf16 (transformers 5 keeps it): weights in fp32
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None  # unused: we pool ourselves (and DDP wants every param used)
        self.encoder_config = encoder_config
        self.use_casing = casing
        self.pooling = pooling
        hidden = int(encoder_config.hidden_size)
        self.hidden_size = hidden
        self.init_range = float(getattr(encoder_config, "initializer_range", 0.02))
        dropout = getattr(encoder_config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(float(dropout if dropout is not None else 0.1))
        self.casing_embeddings = nn.Embedding(NUM_CASING, hidden) if casing else None
        self.ner_head = nn.Linear(hidden, num_ner_labels)
        self.sentiment_head = nn.Linear(hidden, num_sentiments)
        self._init_new_modules()

    @classmethod
    def from_pretrained_encoder(
        cls, name_or_path: str, num_ner_labels: int, *, casing: bool = True, pooling: str = "mean"
    ) -> BeaconModel:
        """Pretrained encoder weights (a folder or hub name) with freshly initialised heads."""
        try:
            encoder = AutoModel.from_pretrained(name_or_path)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load base encoder {name_or_path!r}: {exc}") from exc
        return cls(encoder.config, num_ner_labels, casing=casing, pooling=pooling, encoder=encoder)

    def _init_new_modules(self) -> None:
        for head in (self.ner_head, self.sentiment_head):
            nn.init.normal_(head.weight, std=self.init_range)
            nn.init.zeros_(head.bias)
        if self.casing_embeddings is not None:
            nn.init.normal_(self.casing_embeddings.weight, std=self.init_range * 0.05)

    @property
    def num_ner_labels(self) -> int:
        return int(self.ner_head.out_features)

    @property
    def num_sentiments(self) -> int:
        return int(self.sentiment_head.out_features)

    def embed(self, input_ids: torch.Tensor, casing_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Word embeddings (+ casing embeddings): what the encoder receives as ``inputs_embeds``."""
        embeds: torch.Tensor = self.encoder.get_input_embeddings()(input_ids)
        if self.casing_embeddings is not None:
            if casing_ids is None:
                casing_ids = torch.zeros_like(input_ids)
            embeds = embeds + self.casing_embeddings(casing_ids)
        return embeds

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        casing_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> BeaconOutput:
        """One encoder pass, both heads. ``inputs_embeds`` overrides :meth:`embed` (attributions).

        ``attention_mask`` may be None when no row is padded (faster attention kernels).
        """
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids, casing_ids)
        out = self.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        hidden: torch.Tensor = out.last_hidden_state
        ner_logits = self.ner_head(self.dropout(hidden))
        pooled = self._pool(hidden, attention_mask)
        sentiment_logits = self.sentiment_head(self.dropout(pooled))
        return BeaconOutput(ner_logits, sentiment_logits)

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        if attention_mask is None:
            return hidden.mean(dim=1)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    @torch.no_grad()
    def grow_ner_head(self, new_num_labels: int) -> None:
        """Grow the entity head to ``new_num_labels`` rows, keeping the trained rows exactly.

        New rows start like a fresh head (small random weights); their bias starts at the
        lowest trained bias so the new labels do not swamp the old ones before training.
        """
        old = self.ner_head
        if new_num_labels < old.out_features:
            raise ModelError(f"cannot shrink the entity head from {old.out_features} to {new_num_labels}")
        if new_num_labels == old.out_features:
            return
        grown = nn.Linear(old.in_features, new_num_labels).to(old.weight.device, old.weight.dtype)
        nn.init.normal_(grown.weight, std=self.init_range)
        grown.bias.fill_(float(old.bias.min()))
        grown.weight[: old.out_features] = old.weight
        grown.bias[: old.out_features] = old.bias
        self.ner_head = grown

    def settings(self) -> dict[str, Any]:
        """What the artifact needs to rebuild this network (besides the weights)."""
        return {
            "encoder_config": self.encoder_config.to_dict(),
            "casing": self.use_casing,
            "pooling": self.pooling,
            "num_ner_labels": self.num_ner_labels,
            "num_sentiments": self.num_sentiments,
        }
