"""Tag schemes and label bookkeeping: IOB1/IO → IOB2, label lists, sub-token alignment.

Pure functions over strings and ints; nothing here imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from models.errors import DataError

if TYPE_CHECKING:
    from models.data import Example

IGNORE_INDEX = -100
"""Label id ignored by the loss and by the metrics (special tokens, later sub-tokens, unknown)."""

_TAG_RE = re.compile(r"[BI]-\S+")
_TYPE_RE = re.compile(r"\S+")


def is_valid_tag(tag: str) -> bool:
    """True for ``"O"``, ``"B-TYPE"`` and ``"I-TYPE"`` (TYPE non-empty, no whitespace)."""
    return isinstance(tag, str) and (tag == "O" or _TAG_RE.fullmatch(tag) is not None)


def _check_type(entity_type: str) -> str:
    if not isinstance(entity_type, str) or _TYPE_RE.fullmatch(entity_type) is None:
        raise DataError(f"invalid entity type {entity_type!r}: must be non-empty without whitespace")
    return entity_type


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """Convert IOB1 or IO tags to IOB2; valid IOB2 comes back unchanged.

    An ``I-X`` that follows ``O``, the sentence start or an entity of another type becomes
    ``B-X``. IO runs of the same type (``I-X I-X``) merge into one entity, as IO cannot tell.
    """
    out: list[str] = []
    prev = "O"
    for tag in tags:
        if not is_valid_tag(tag):
            raise DataError(f"invalid tag {tag!r} (expected O, B-TYPE or I-TYPE)")
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def entity_types(examples: Iterable[Example]) -> set[str]:
    """Entity types used in the tags of ``examples`` (unknown ``None`` tags ignored)."""
    found: set[str] = set()
    for ex in examples:
        for tag in ex.tags or ():
            if tag is not None and tag != "O":
                found.add(tag[2:])
    return found


def build_label_list(types: Iterable[str]) -> list[str]:
    """``["O", "B-A", "I-A", "B-B", ...]`` with the types sorted."""
    return ["O", *(f"{p}-{t}" for t in sorted({_check_type(t) for t in types}) for p in "BI")]


def extend_label_list(old: Sequence[str], types: Iterable[str]) -> list[str]:
    """``old`` unchanged, then ``B-``/``I-`` for each new type (sorted) at the end.

    Growing a trained head this way keeps every existing row at its index.
    """
    if len(set(old)) != len(old) or not all(is_valid_tag(t) for t in old):
        raise DataError(f"invalid label list {list(old)!r}")
    known = {t[2:] for t in old if t != "O"}
    new = sorted({_check_type(t) for t in types} - known)
    return [*old, *(f"{p}-{t}" for t in new for p in "BI")]


def align_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    """Sub-token labels from word labels (``word_ids`` from a fast tokenizer's ``word_ids()``).

    The first sub-token of each word gets the word's label; later sub-tokens and special
    tokens (``None``) get :data:`IGNORE_INDEX`. A word label of ``IGNORE_INDEX`` stays ignored.
    """
    out: list[int] = []
    prev: int | None = None
    for wid in word_ids:
        if wid is None or wid == prev:
            out.append(IGNORE_INDEX)
        elif 0 <= wid < len(word_labels):
            out.append(int(word_labels[wid]))
        else:
            raise DataError(f"word id {wid} out of range for {len(word_labels)} word labels")
        prev = wid
    return out


def tags_to_spans(tags: Sequence[str | None]) -> list[tuple[int, int, str]]:
    """Entity spans ``(start, end, type)`` in word indices, end exclusive.

    IOB2: ``B-X`` starts an entity, ``I-X`` continues one of the same type; a stray ``I-X``
    (after ``O`` or another type) starts a new entity. ``None`` (unknown) acts like ``O``.
    """
    spans: list[tuple[int, int, str]] = []
    start, kind = -1, ""
    for i, tag in enumerate(tags):
        if tag is not None and not is_valid_tag(tag):
            raise DataError(f"invalid tag {tag!r} at word {i}")
        if tag is not None and tag.startswith("I-") and start >= 0 and tag[2:] == kind:
            continue
        if start >= 0:
            spans.append((start, i, kind))
            start = -1
        if tag is not None and tag != "O":
            start, kind = i, tag[2:]
    if start >= 0:
        spans.append((start, len(tags), kind))
    return spans


def strip_ignored(
    pred_ids: Sequence[Sequence[int]],
    label_ids: Sequence[Sequence[int]],
    id2label: Mapping[int, str],
) -> tuple[list[list[str]], list[list[str]]]:
    """Tag strings for the positions whose gold label is not :data:`IGNORE_INDEX`.

    Returns ``(pred_tags, gold_tags)``, one list per sequence, ready for seqeval.
    """
    if len(pred_ids) != len(label_ids):
        raise DataError(f"{len(pred_ids)} prediction rows but {len(label_ids)} label rows")
    preds: list[list[str]] = []
    golds: list[list[str]] = []
    for row, (pred_row, gold_row) in enumerate(zip(pred_ids, label_ids, strict=True)):
        if len(pred_row) != len(gold_row):
            raise DataError(f"row {row}: {len(pred_row)} predictions but {len(gold_row)} labels")
        keep = [(int(p), int(g)) for p, g in zip(pred_row, gold_row, strict=True) if int(g) != IGNORE_INDEX]
        try:
            preds.append([id2label[p] for p, _ in keep])
            golds.append([id2label[g] for _, g in keep])
        except KeyError as exc:
            raise DataError(f"row {row}: label id {exc.args[0]} not in id2label") from exc
    return preds, golds
