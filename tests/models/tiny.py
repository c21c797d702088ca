"""A tiny random BERT (hidden 32, 2 layers) with a small vocabulary, for fast model tests."""

from __future__ import annotations

import random
import string
from pathlib import Path

import torch
from transformers import BertConfig, BertTokenizer, PreTrainedTokenizerBase

from models.data import Example, example_from_spans
from models.network import BeaconModel

# Tiny matrices: one thread is several times faster than two fighting over a shared CPU.
torch.set_num_threads(1)

WORDS = [
    "the", "a", "of", "in", "to", "and", "is", "was", "at", "on",
    "alice", "bob", "carol", "paris", "london", "berlin", "acme", "globex", "initech",
    "visited", "met", "joined", "sold", "bought", "shares",
    "great", "good", "excellent", "bad", "terrible", "awful", "okay", "report", "today",
]  # fmt: skip


def write_tokenizer(folder: Path) -> PreTrainedTokenizerBase:
    """A WordPiece tokenizer whose vocabulary covers every ASCII word (letters as pieces)."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = [f"##{c}" for c in string.ascii_lowercase + string.digits]
    vocab_list = specials + WORDS + chars + pieces
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=vocab)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def tiny_config(vocab_size: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=512,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def write_tiny_base(folder: Path, seed: int = 0) -> Path:
    """A base-model folder (config, weights, tokenizer) usable as ``TrainConfig.base_model``."""
    torch.manual_seed(seed)
    tokenizer = write_tokenizer(folder)
    model = BeaconModel(tiny_config(len(tokenizer)), 1)
    model.encoder.save_pretrained(str(folder))
    return folder


def tiny_model(tokenizer: PreTrainedTokenizerBase, labels: int = 5, casing: bool = True) -> BeaconModel:
    return BeaconModel(tiny_config(len(tokenizer)), labels, casing=casing)


PEOPLE = ["Alice", "Bob", "Carol"]
PLACES = ["Paris", "London", "Berlin"]
COMPANIES = ["Acme", "Globex", "Initech"]
GOOD = ["great", "good", "excellent"]
BAD = ["bad", "terrible", "awful"]


def synthetic_examples(n: int, seed: int = 0) -> list[Example]:
    """Short sentences with PER/LOC/ORG entities; every third one carries a sentiment only."""
    rng = random.Random(seed)
    out: list[Example] = []
    for i in range(n):
        if i % 3 == 2:
            mood = rng.choice(["positive", "negative"])
            word = rng.choice(GOOD if mood == "positive" else BAD)
            text = f"the report was {word} today"
            out.append(example_from_spans(text, None, mood))
            continue
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        text = f"{person} visited {place} and {rng.choice(COMPANIES)}"
        org = text.rsplit(" ", 1)[1]
        entities = [
            (0, len(person), "PER"),
            (text.index(place), text.index(place) + len(place), "LOC"),
            (len(text) - len(org), len(text), "ORG"),
        ]
        out.append(example_from_spans(text, entities, None))
    return out


class ListLog:
    """A structlog-like logger that records events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def info(self, event: str, **kw: object) -> None:
        self.events.append((event, kw))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def train_tiny_artifact(folder: Path, *, epochs: int = 10, n: int = 60, seed: int = 0) -> Path:
    """A small trained artifact (fp32, CPU) in ``folder / "artifact"``."""
    from models.train import TrainConfig, train_to_artifact

    base = write_tiny_base(folder / "base", seed=seed)
    config = TrainConfig(
        base_model=str(base), epochs=epochs, batch_size=8, lr=3e-3, device="cpu", precision="fp32",
        patience=0, seed=seed, max_length=32,
    )
    return train_to_artifact(
        config, synthetic_examples(n, seed=seed), {"dev": synthetic_examples(15, seed=seed + 1)},
        out_dir=folder / "artifact", log=ListLog(), progress=False,
    )
