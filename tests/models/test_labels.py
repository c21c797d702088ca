"""Tag schemes, label lists and sub-token alignment (``models.labels``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import BertTokenizerFast, PreTrainedTokenizerBase  # type: ignore[attr-defined]

from models.data import Example, example_from_spans
from models.errors import DataError
from models.labels import (
    IGNORE_INDEX,
    align_labels,
    build_label_list,
    entity_types,
    extend_label_list,
    iob1_to_iob2,
    is_valid_tag,
    strip_ignored,
    tags_to_spans,
)

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "ac", "##me", "corp", "hired", "jo", "##han", "##na", "in", "berlin", ".", "un", "##believ", "##able",
]  # fmt: skip


@pytest.fixture
def tokenizer(tmp_path: Path) -> PreTrainedTokenizerBase:
    """A real WordPiece fast tokenizer over a tiny vocab (loaded from a folder: portable across
    transformers 4/5; in 5.x ``BertTokenizerFast(vocab_file=...)`` silently ignores the file)."""
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tok = BertTokenizerFast.from_pretrained(str(tmp_path))
    assert tok.convert_tokens_to_ids("berlin") == VOCAB.index("berlin")
    return tok


# ---------------------------------------------------------------- tag validity and IOB1 → IOB2


@pytest.mark.parametrize("tag", ["O", "B-PER", "I-creative-work", "B-X"])
def test_valid_tags(tag: str) -> None:
    assert is_valid_tag(tag)


@pytest.mark.parametrize("tag", ["", "o", "B-", "I", "E-PER", "S-LOC", "B PER", "B-PER X", "BPER", "-PER"])
def test_invalid_tags(tag: str) -> None:
    assert not is_valid_tag(tag)


def test_iob1_to_iob2_conll_style() -> None:
    # CoNLL-2003 IOB1: I- everywhere, B- only between two touching entities of one type
    iob1 = ["I-ORG", "O", "I-MISC", "O", "I-PER", "I-PER", "B-PER", "I-LOC", "I-ORG", "I-ORG"]
    assert iob1_to_iob2(iob1) == ["B-ORG", "O", "B-MISC", "O", "B-PER", "I-PER", "B-PER", "B-LOC", "B-ORG", "I-ORG"]


def test_iob1_to_iob2_io_tags_merge_runs() -> None:
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "I-ORG"]) == ["B-PER", "I-PER", "O", "B-LOC", "B-ORG"]


@pytest.mark.parametrize(
    "tags",
    [[], ["O"], ["B-PER", "I-PER", "B-PER", "O", "B-LOC"], ["B-creative-work", "I-creative-work"]],
)
def test_iob1_to_iob2_idempotent_on_iob2(tags: list[str]) -> None:
    assert iob1_to_iob2(tags) == tags
    assert iob1_to_iob2(iob1_to_iob2(tags)) == tags


def test_iob1_to_iob2_rejects_bad_tag() -> None:
    with pytest.raises(DataError, match="E-PER"):
        iob1_to_iob2(["O", "E-PER"])


# ---------------------------------------------------------------- label lists


def test_build_label_list_sorted() -> None:
    assert build_label_list(["PER", "LOC", "MISC", "ORG", "PER"]) == [
        "O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER",
    ]  # fmt: skip
    assert build_label_list([]) == ["O"]


def test_build_label_list_rejects_bad_type() -> None:
    with pytest.raises(DataError):
        build_label_list(["PER", "has space"])


def test_extend_label_list_keeps_old_order() -> None:
    old = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]  # deliberately not sorted
    grown = extend_label_list(old, ["TICKER", "LOC", "MONEY"])
    assert grown[: len(old)] == old
    assert grown[len(old) :] == ["B-MONEY", "I-MONEY", "B-TICKER", "I-TICKER"]
    assert extend_label_list(old, ["PER"]) == old


def test_extend_label_list_rejects_duplicates() -> None:
    with pytest.raises(DataError):
        extend_label_list(["O", "B-PER", "B-PER"], [])


def test_entity_types() -> None:
    a = example_from_spans("Acme hired Johanna", [(0, 4, "ORG"), (11, 18, "PER")], None)
    b = Example(text="x y", words=["x", "y"], offsets=[(0, 1), (2, 3)], tags=[None, "B-LOC"])
    c = example_from_spans("just sentiment", None, "neutral")
    assert entity_types([a, b, c]) == {"ORG", "PER", "LOC"}


# ---------------------------------------------------------------- alignment


def test_align_labels_synthetic() -> None:
    word_ids = [None, 0, 1, 1, 1, 2, None]
    assert align_labels(word_ids, [3, 5, 0]) == [-100, 3, 5, -100, -100, 0, -100]
    assert align_labels(word_ids, [3, IGNORE_INDEX, 0]) == [-100, 3, -100, -100, -100, 0, -100]


def test_align_labels_out_of_range() -> None:
    with pytest.raises(DataError, match="out of range"):
        align_labels([None, 0, 2, None], [1, 1])


def test_align_labels_with_real_wordpiece(tokenizer: PreTrainedTokenizerBase) -> None:
    words = ["Acme", "Corp", "hired", "Johanna", "in", "Berlin", "."]
    labels = build_label_list(["LOC", "ORG", "PER"])
    tags = ["B-ORG", "I-ORG", "O", "B-PER", "O", "B-LOC", "O"]
    word_labels = [labels.index(t) for t in tags]
    enc = tokenizer(words, is_split_into_words=True)
    assert enc.tokens() == ["[CLS]", "ac", "##me", "corp", "hired", "jo", "##han", "##na", "in", "berlin", ".", "[SEP]"]
    aligned = align_labels(enc.word_ids(), word_labels)
    assert len(aligned) == len(enc["input_ids"])
    kept = [(tok, labels[i]) for tok, i in zip(enc.tokens(), aligned, strict=True) if i != IGNORE_INDEX]
    assert kept == [
        ("ac", "B-ORG"), ("corp", "I-ORG"), ("hired", "O"), ("jo", "B-PER"),
        ("in", "O"), ("berlin", "B-LOC"), (".", "O"),
    ]  # fmt: skip
    assert aligned[0] == aligned[-1] == IGNORE_INDEX  # [CLS], [SEP]


def test_align_labels_word_without_subtokens(tokenizer: PreTrainedTokenizerBase) -> None:
    # a lone variation selector (as in WNUT-17 dev) yields no sub-token: its label has no position
    words = ["hired", "\ufe0f", "Berlin"]
    enc = tokenizer(words, is_split_into_words=True)
    assert 1 not in enc.word_ids()
    assert align_labels(enc.word_ids(), [0, 7, 1]) == [-100, 0, 1, -100]


# ---------------------------------------------------------------- spans and metric stripping


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        ([], []),
        (["O", "O"], []),
        (["B-PER", "I-PER", "O", "B-LOC"], [(0, 2, "PER"), (3, 4, "LOC")]),
        (["B-PER", "B-PER", "I-PER"], [(0, 1, "PER"), (1, 3, "PER")]),
        (["I-ORG", "I-ORG", "O"], [(0, 2, "ORG")]),  # stray I- starts an entity
        (["B-PER", "I-LOC", "I-LOC"], [(0, 1, "PER"), (1, 3, "LOC")]),
        (["B-PER", None, "I-PER"], [(0, 1, "PER"), (2, 3, "PER")]),
        (["B-creative-work", "I-creative-work"], [(0, 2, "creative-work")]),
    ],
)
def test_tags_to_spans(tags: list[str | None], spans: list[tuple[int, int, str]]) -> None:
    assert tags_to_spans(tags) == spans


def test_strip_ignored() -> None:
    id2label = {0: "O", 1: "B-PER", 2: "I-PER"}
    preds = [[0, 1, 2, 2, 0], [1, 0, 0]]
    golds = [[-100, 1, -100, 2, -100], [-100, -100, -100]]
    pred_tags, gold_tags = strip_ignored(preds, golds, id2label)
    assert pred_tags == [["B-PER", "I-PER"], []]
    assert gold_tags == [["B-PER", "I-PER"], []]


def test_strip_ignored_errors() -> None:
    with pytest.raises(DataError, match="row 0"):
        strip_ignored([[0, 1]], [[0]], {0: "O", 1: "B-X"})
    with pytest.raises(DataError, match="label id 9"):
        strip_ignored([[9]], [[0]], {0: "O"})
    with pytest.raises(DataError):
        strip_ignored([[0]], [], {0: "O"})
