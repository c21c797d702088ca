"""From words to padded tensors: sub-tokens, casing classes, sliding windows, batches.

Training and serving share this code, so the model always sees text the same way:
words (from :func:`models.data.split_words` or a reader) are tokenized as pre-split words,
so a sub-token never straddles two words and entity offsets are word offsets.

A word list longer than ``max_length - 2`` sub-tokens is cut into overlapping windows.
Each sub-token is *owned* by exactly one window (the one where it sits farthest from an
edge: the overlap is split in the middle); predictions and training labels come from the
owner only, so nothing is truncated and nothing is counted twice.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from models.errors import ModelError
from models.network import CASE_SPECIAL, casing_feature


@dataclass
class Encoded:
    """One word list as sub-tokens (no special tokens)."""

    input_ids: list[int]
    word_ids: list[int]  # word index of each sub-token
    casing_ids: list[int]  # casing class of each sub-token's word


@dataclass
class Window:
    """One model input: ``[CLS] content [SEP]`` for a slice of a document's sub-tokens."""

    doc: int  # index of the document in the encoded batch
    start: int  # index of the first content sub-token in the document
    own_start: int  # sub-tokens [own_start, own_end) of the document are owned by this window
    own_end: int
    input_ids: list[int]  # with specials
    casing_ids: list[int]
    word_ids: list[int | None]  # None for specials
    firsts: list[tuple[int, int]]  # (word, window position) of each word whose first sub-token is owned here

    def __len__(self) -> int:
        return len(self.input_ids)


class WordTokenizer:
    """Pre-split words → sub-tokens with the fast tokenizer's Rust backend.

    A private copy of the backend with truncation and padding switched off (a tokenizer.json
    may enable both, and the Python wrapper would otherwise re-set them on every call), so
    nothing is ever truncated and concurrent calls never mutate shared state.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ModelError("Beacon needs a fast (Rust) tokenizer")
        self.backend = copy.deepcopy(backend)
        self.backend.no_truncation()
        self.backend.no_padding()
        self.lock = threading.Lock()
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise ModelError("the tokenizer has no [CLS]/[SEP] tokens; Beacon needs a BERT-style tokenizer")
        self.cls_id = int(tokenizer.cls_token_id)
        self.sep_id = int(tokenizer.sep_token_id)
        self.pad_id = int(tokenizer.pad_token_id or 0)

    def encode(self, batch: Sequence[Sequence[str]]) -> list[Encoded]:
        lists = [list(words) for words in batch]
        nonempty = [i for i, words in enumerate(lists) if words]
        out = [Encoded([], [], []) for _ in lists]
        if not nonempty:
            return out
        with self.lock:
            encodings = self.backend.encode_batch(
                [lists[i] for i in nonempty], is_pretokenized=True, add_special_tokens=False
            )
        for i, enc in zip(nonempty, encodings, strict=True):
            word_ids = enc.word_ids
            if None in word_ids:
                raise ModelError("the tokenizer added special tokens to pre-split words")
            casing = [casing_feature(w) for w in lists[i]]
            ids: list[int] = [w for w in word_ids if w is not None]
            out[i] = Encoded(list(enc.ids), ids, [casing[w] for w in ids])
        return out


def encode_words(tokenizer: PreTrainedTokenizerBase, batch: Sequence[Sequence[str]]) -> list[Encoded]:
    """Tokenize pre-split words (one-off; keep a :class:`WordTokenizer` for repeated calls)."""
    return WordTokenizer(tokenizer).encode(batch)


def window_starts(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``size`` sub-tokens covering ``length`` sub-tokens."""
    if length <= size:
        return [0]
    step = max(1, size - overlap)
    starts = list(range(0, length - size, step))
    starts.append(length - size)
    return starts


def make_windows(
    encoded: Sequence[Encoded],
    *,
    cls_id: int,
    sep_id: int,
    max_length: int,
    overlap: int | None = None,
) -> list[Window]:
    """Cut every document into windows of at most ``max_length`` ids (specials included)."""
    size = max_length - 2
    if size < 1:
        raise ModelError(f"max_length {max_length} leaves no room for text")
    overlap = size // 4 if overlap is None else min(overlap, size - 1)
    windows: list[Window] = []
    for doc, enc in enumerate(encoded):
        n = len(enc.input_ids)
        wids = enc.word_ids
        first_tokens = [t for t in range(n) if t == 0 or wids[t - 1] != wids[t]]
        starts = window_starts(n, size, overlap)
        ends = [min(n, s + size) for s in starts]
        for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
            own_start = 0 if k == 0 else (start + ends[k - 1]) // 2
            own_end = n if k == len(starts) - 1 else (starts[k + 1] + end) // 2
            lo, hi = bisect.bisect_left(first_tokens, own_start), bisect.bisect_left(first_tokens, own_end)
            windows.append(
                Window(
                    doc=doc,
                    start=start,
                    own_start=own_start,
                    own_end=own_end,
                    input_ids=[cls_id, *enc.input_ids[start:end], sep_id],
                    casing_ids=[CASE_SPECIAL, *enc.casing_ids[start:end], CASE_SPECIAL],
                    word_ids=[None, *wids[start:end], None],
                    firsts=[(wids[t], t - start + 1) for t in first_tokens[lo:hi]],
                )
            )
    return windows


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first, stable)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def window_tensors(
    windows: Sequence[Window], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``input_ids``, ``attention_mask`` (None when nothing is padded) and ``casing_ids``.

    Built as one CPU tensor and moved in one copy: on a GPU, small-batch latency is
    dominated by launches and transfers, not by arithmetic.
    """
    width = max(len(w) for w in windows)
    padded = any(len(w) != width for w in windows)
    rows: list[list[list[int]]] = [
        [w.input_ids + [pad_id] * (width - len(w)) for w in windows],
        [w.casing_ids + [CASE_SPECIAL] * (width - len(w)) for w in windows],
    ]
    if padded:
        rows.append([[1] * len(w) + [0] * (width - len(w)) for w in windows])
    both = torch.tensor(rows, dtype=torch.long).to(device, non_blocking=True)
    return both[0], (both[2] if padded else None), both[1]
