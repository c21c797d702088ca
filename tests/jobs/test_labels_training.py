"""Labels → training: what a 👎, a 👍 and a correction become as model rows, and one optimiser step on a
👎 label pushes the rejected sentiment and the rejected entity tag down (the loss itself is tested in
tests/models/test_train.py; here the path from feedback to it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import torch

from jobs import labels
from models.data import SENTIMENTS
from models.features import Row, batch_loss, build_rows, collate
from models.labels import IGNORE_INDEX, build_label_list
from tests.models.tiny import tiny_model, write_tokenizer

TEXT = "bob met alice in paris"
LABELS = build_label_list(["PER", "LOC", "ORG"])
LABEL2ID = {label: i for i, label in enumerate(LABELS)}
SENT2ID = {label: i for i, label in enumerate(SENTIMENTS)}


def _ent(piece: str, label: str, source: str = "model") -> dict[str, object]:
    start = TEXT.index(piece)
    return {"text": piece, "label": label, "start": start, "end": start + len(piece), "score": 0.9, "source": source}


def _example(kind: str, payload: dict[str, object] | None = None) -> labels.Example:
    pred = labels.PredictionView(7, TEXT, "positive", [_ent("bob", "ORG"), _ent("paris", "LOC")])
    decision = labels.decide(pred, [labels.Vote("U1", kind, payload or {}, datetime.now(UTC))])
    assert decision.example is not None
    return decision.example


def _row(tmp_path: Path, kind: str, payload: dict[str, object] | None = None) -> tuple[Row, list[int]]:
    tokenizer = write_tokenizer(tmp_path / "tok")
    ex = _example(kind, payload)
    (row,) = build_rows([ex], tokenizer, label2id=LABEL2ID, sentiment2id=SENT2ID, max_length=32)
    words = tokenizer([ex.words], is_split_into_words=True).word_ids(0)
    firsts = [words.index(i) for i in range(len(ex.words))]
    return row, firsts


def test_a_thumbs_down_becomes_rejection_only_supervision(tmp_path: Path) -> None:
    row, firsts = _row(tmp_path, "reject")
    assert row.sentiment == IGNORE_INDEX and row.not_sentiment == SENT2ID["positive"]
    assert all(label == IGNORE_INDEX for label in row.ner_labels)  # no word is claimed to be O
    nots = {i: row.ner_not[pos] for i, pos in enumerate(firsts)}
    assert nots == {0: LABEL2ID["B-ORG"], 1: IGNORE_INDEX, 2: IGNORE_INDEX, 3: IGNORE_INDEX, 4: LABEL2ID["B-LOC"]}


def test_a_thumbs_up_and_a_correction_become_full_supervision(tmp_path: Path) -> None:
    up, firsts = _row(tmp_path, "confirm")
    assert up.sentiment == SENT2ID["positive"] and up.not_sentiment == IGNORE_INDEX
    assert [up.ner_labels[p] for p in firsts] == [LABEL2ID[t] for t in ("B-ORG", "O", "O", "O", "B-LOC")]
    fixed, _ = _row(tmp_path, "correction", {"sentiment": "neutral",
                                             "entities": [_ent("bob", "PER"), _ent("alice", "PER")]})
    assert fixed.sentiment == SENT2ID["neutral"]
    assert [fixed.ner_labels[p] for p in firsts] == [LABEL2ID[t] for t in ("B-PER", "O", "B-PER", "O", "O")]


def test_one_step_on_a_thumbs_down_pushes_the_rejected_answers_down(tmp_path: Path) -> None:
    tokenizer = write_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    model = tiny_model(tokenizer, labels=len(LABELS))
    ex = _example("reject")
    rows = build_rows([ex], tokenizer, label2id=LABEL2ID, sentiment2id=SENT2ID, max_length=32)
    batch = collate(rows, int(tokenizer.pad_token_id or 0), torch.device("cpu"))
    rejected_pos = int((batch.ner_not[0] != IGNORE_INDEX).nonzero()[0])

    def probs() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            out = model(batch.input_ids, batch.attention_mask, batch.casing_ids)
        model.train()
        sentiment = torch.softmax(out.sentiment_logits, -1)[0, SENT2ID["positive"]]
        tag = torch.softmax(out.ner_logits, -1)[0, rejected_pos, LABEL2ID["B-ORG"]]
        return float(sentiment), float(tag)

    before = probs()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        loss, _, _ = batch_loss(model(batch.input_ids, batch.attention_mask, batch.casing_ids), batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = probs()
    assert after[0] < before[0] - 0.01  # "not positive"
    assert after[1] < before[1] - 0.01  # "bob is not B-ORG"


def test_unknown_words_of_a_thumbs_down_carry_no_entity_loss(tmp_path: Path) -> None:
    tokenizer = write_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    model = tiny_model(tokenizer, labels=len(LABELS))
    rows = build_rows([_example("reject")], tokenizer, label2id=LABEL2ID, sentiment2id=SENT2ID, max_length=32)
    batch = collate(rows, int(tokenizer.pad_token_id or 0), torch.device("cpu"))
    out = model(batch.input_ids, batch.attention_mask, batch.casing_ids)
    ner_logits = out.ner_logits.detach().requires_grad_(True)
    _, ner, _ = batch_loss(type(out)(ner_logits, out.sentiment_logits.detach()), batch)
    total, _, _ = batch_loss(type(out)(ner_logits, out.sentiment_logits.detach()), batch, sentiment_weight=0.0)
    (grad,) = torch.autograd.grad(total, ner_logits)
    supervised = batch.ner_not[0] != IGNORE_INDEX
    assert int(supervised.sum()) == 2 and float(ner) > 0
    assert torch.count_nonzero(grad[0, ~supervised]) == 0  # masked words: no gradient at all
    assert torch.count_nonzero(grad[0, supervised]) > 0
