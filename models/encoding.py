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

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from models.errors import ModelError
from models.network import CASE_SPECIAL, casing_feature

IGNORE = -100
_TOKENIZER_LOCK = threading.Lock()


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
    continues_word: bool = False  # the first content sub-token is not its word's first

    def __len__(self) -> int:
        return len(self.input_ids)

    def owns(self, position: int) -> bool:
        """Whether the window position ``position`` (specials counted) is owned here."""
        token = self.start + position - 1
        return 0 < position < len(self.input_ids) - 1 and self.own_start <= token < self.own_end


def encode_words(tokenizer: PreTrainedTokenizerBase, batch: Sequence[Sequence[str]]) -> list[Encoded]:
    """Tokenize pre-split words; thread-safe (the Rust tokenizer is shared by worker threads)."""
    if not batch:
        return []
    lists = [list(words) for words in batch]
    nonempty = [i for i, words in enumerate(lists) if words]
    out = [Encoded([], [], []) for _ in lists]
    if not nonempty:
        return out
    with _TOKENIZER_LOCK:
        enc = tokenizer(
            [lists[i] for i in nonempty], is_split_into_words=True, add_special_tokens=False
        )
    for row, i in enumerate(nonempty):
        word_ids = [w for w in enc.word_ids(row)]
        if any(w is None for w in word_ids):
            raise ModelError("the tokenizer added special tokens to pre-split words")
        ids = list(enc["input_ids"][row])
        casing = [casing_feature(lists[i][w]) for w in word_ids]  # type: ignore[index]
        out[i] = Encoded(ids, [int(w) for w in word_ids if w is not None], casing)
    return out


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
        starts = window_starts(n, size, overlap)
        ends = [min(n, s + size) for s in starts]
        for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
            own_start = 0 if k == 0 else (start + ends[k - 1]) // 2
            own_end = n if k == len(starts) - 1 else (starts[k + 1] + end) // 2
            windows.append(
                Window(
                    doc=doc,
                    start=start,
                    own_start=own_start,
                    own_end=own_end,
                    input_ids=[cls_id, *enc.input_ids[start:end], sep_id],
                    casing_ids=[CASE_SPECIAL, *enc.casing_ids[start:end], CASE_SPECIAL],
                    word_ids=[None, *enc.word_ids[start:end], None],
                    continues_word=start > 0 and enc.word_ids[start - 1] == enc.word_ids[start],
                )
            )
    return windows


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first, stable)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(
    rows: Sequence[Sequence[int]], pad_value: int, device: torch.device | None = None
) -> torch.Tensor:
    """Right-pad integer rows to the longest one."""
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), max(width, 1)), pad_value, dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            out[i, : len(row)] = torch.tensor(list(row), dtype=torch.long)
    return out if device is None else out.to(device, non_blocking=True)


def window_tensors(
    windows: Sequence[Window], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``input_ids``, ``attention_mask`` and ``casing_ids`` for a batch of windows."""
    input_ids = pad_batch([w.input_ids for w in windows], pad_id)
    mask = pad_batch([[1] * len(w) for w in windows], 0)
    casing = pad_batch([w.casing_ids for w in windows], CASE_SPECIAL)
    return input_ids.to(device), mask.to(device), casing.to(device)


def first_token_positions(window: Window) -> dict[int, int]:
    """word index → window position of its first sub-token, for words owned by this window."""
    positions: dict[int, int] = {}
    for pos in range(1, len(window.input_ids) - 1):
        word = window.word_ids[pos]
        first = window.word_ids[pos - 1] != word if pos > 1 else not window.continues_word
        if first and word is not None and window.owns(pos):
            positions[word] = pos
    return positions
