"""The peer: two separate Hugging Face models on the same encoder, trained with ``Trainer``.

``AutoModelForTokenClassification`` for entities and ``AutoModelForSequenceClassification``
for sentiment, each fine-tuned on its own data (lr 5e-5, batch 32, 3 epochs, max length 128
by default): what a team would build with the stock tools.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)

from models.data import SENTIMENTS, Example
from models.evaluate import ner_report, sentiment_report
from models.labels import IGNORE_INDEX, align_labels


@dataclass
class PeerSettings:
    lr: float = 5e-5
    batch_size: int = 32
    epochs: float = 3.0
    max_length: int = 128
    max_steps: int = -1
    bf16: bool = False
    seed: int = 13


def ner_features(tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], labels: list[str],
                 max_length: int) -> list[dict[str, Any]]:
    label2id = {label: i for i, label in enumerate(labels)}
    enc = tokenizer([ex.words for ex in examples], is_split_into_words=True, truncation=True,
                    max_length=max_length)
    rows = []
    for i, ex in enumerate(examples):
        word_labels = [label2id.get(t, IGNORE_INDEX) if t is not None else IGNORE_INDEX for t in ex.tags or []]
        rows.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                     "labels": align_labels(enc.word_ids(i), word_labels)})
    return rows


def sentiment_features(tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example],
                       max_length: int) -> list[dict[str, Any]]:
    enc = tokenizer([ex.text for ex in examples], truncation=True, max_length=max_length)
    return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
             "labels": SENTIMENTS.index(ex.sentiment or "neutral")} for i, ex in enumerate(examples)]


def _args(settings: PeerSettings, device: torch.device, out: str) -> TrainingArguments:
    return TrainingArguments(
        output_dir=out, per_device_train_batch_size=settings.batch_size, learning_rate=settings.lr,
        num_train_epochs=settings.epochs, max_steps=settings.max_steps, bf16=settings.bf16,
        save_strategy="no", eval_strategy="no", logging_strategy="no", report_to=[], seed=settings.seed,
        use_cpu=device.type == "cpu", disable_tqdm=True, dataloader_num_workers=0,
    )


def train_peer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, features: list[dict[str, Any]],
               collator: Any, settings: PeerSettings, device: torch.device) -> dict[str, float]:
    """Fine-tune with ``Trainer``; returns its metrics (runtime, samples/s) plus wall seconds."""
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model=model, args=_args(settings, device, out), train_dataset=features,  # type: ignore[arg-type]
                          data_collator=collator)
        started = time.perf_counter()
        output = trainer.train()
        wall = time.perf_counter() - started
    metrics = {k: float(v) for k, v in output.metrics.items() if isinstance(v, int | float)}
    metrics["wall_seconds"] = wall
    metrics["steps"] = float(output.global_step)
    return metrics


def build_ner(encoder: str, labels: list[str]) -> PreTrainedModel:
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)})
    return model.float()  # a half-precision checkpoint would otherwise train in half precision


def build_sentiment(encoder: str) -> PreTrainedModel:
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder, num_labels=len(SENTIMENTS), id2label=dict(enumerate(SENTIMENTS)),
        label2id={s: i for i, s in enumerate(SENTIMENTS)})
    return model.float()


def train_ner_peer(encoder: str, examples: Sequence[Example], labels: list[str], settings: PeerSettings,
                   device: torch.device) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, float]]:
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = build_ner(encoder, labels)
    features = ner_features(tokenizer, examples, labels, settings.max_length)
    metrics = train_peer(model, tokenizer, features, DataCollatorForTokenClassification(tokenizer), settings,
                         device)
    return model, tokenizer, metrics


def train_sentiment_peer(encoder: str, examples: Sequence[Example], settings: PeerSettings,
                         device: torch.device) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, float]]:
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = build_sentiment(encoder)
    features = sentiment_features(tokenizer, examples, settings.max_length)
    metrics = train_peer(model, tokenizer, features, DataCollatorWithPadding(tokenizer), settings, device)
    return model, tokenizer, metrics


def _batches(features: list[dict[str, Any]], collator: Any, size: int, device: torch.device) -> Any:
    for start in range(0, len(features), size):
        batch = collator(features[start : start + size])
        yield {k: v.to(device) for k, v in batch.items()}


@torch.inference_mode()
def eval_ner_peer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example],
                  labels: list[str], max_length: int, device: torch.device, bf16: bool) -> dict[str, Any]:
    """Word-level strict IOB2 scores: the first sub-token's prediction per word; truncated words "O"."""
    model.to(device).eval()
    features = ner_features(tokenizer, examples, labels, max_length)
    collator = DataCollatorForTokenClassification(tokenizer)
    gold_all: list[list[str]] = []
    pred_all: list[list[str]] = []
    k = 0
    for batch in _batches(features, collator, 64, device):
        gold_ids = batch.pop("labels")
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(**batch).logits
        pred_ids = logits.argmax(-1)
        for row in range(gold_ids.shape[0]):
            ex = examples[k]
            k += 1
            keep = gold_ids[row] != IGNORE_INDEX
            predicted = [labels[int(i)] for i in pred_ids[row][keep]]
            predicted += ["O"] * (len(ex.words) - len(predicted))
            gold = [t if t is not None else "O" for t in ex.tags or []]
            gold_all.append(gold)
            pred_all.append(predicted[: len(gold)])
    return ner_report(gold_all, pred_all)


@torch.inference_mode()
def eval_sentiment_peer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example],
                        max_length: int, device: torch.device, bf16: bool) -> dict[str, Any]:
    model.to(device).eval()
    features = sentiment_features(tokenizer, examples, max_length)
    probs: list[list[float]] = []
    for batch in _batches(features, DataCollatorWithPadding(tokenizer), 64, device):
        batch.pop("labels")
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(**batch).logits
        probs.extend(torch.softmax(logits.float(), -1).tolist())
    gold = [ex.sentiment or "neutral" for ex in examples]
    pred = [SENTIMENTS[max(range(len(p)), key=p.__getitem__)] for p in probs]
    return sentiment_report(gold, pred, probs)
