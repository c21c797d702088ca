from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from models.artifact import load_artifact, read_meta
from models.data import SENTIMENTS, Example, example_from_spans
from models.errors import TrainingError
from models.features import (
    Row,
    batch_loss,
    build_rows,
    collate,
    plan_batches,
    shard_batches,
    supervised_loss,
)
from models.labels import IGNORE_INDEX, build_label_list
from models.network import BeaconModel
from models.train import TrainConfig, train, train_to_artifact
from models.trainsetup import starting_point
from tests.models.tiny import ListLog, synthetic_examples, tiny_model, write_tiny_base, write_tokenizer

LABELS = build_label_list(["LOC", "ORG", "PER"])
LABEL2ID = {label: i for i, label in enumerate(LABELS)}
SENT2ID = {s: i for i, s in enumerate(SENTIMENTS)}
CPU = torch.device("cpu")


def _config(base: Path, **kw: object) -> TrainConfig:
    values: dict[str, object] = dict(base_model=str(base), epochs=3, batch_size=8, lr=3e-3, device="cpu",
                                     precision="fp32", patience=0, max_length=32)
    values.update(kw)
    return TrainConfig(**values)  # type: ignore[arg-type]


def _rows(tokenizer, examples: list[Example]) -> list[Row]:  # type: ignore[no-untyped-def]
    return build_rows(examples, tokenizer, label2id=LABEL2ID, sentiment2id=SENT2ID, max_length=32)


def _probs(model: BeaconModel, tokenizer, examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    batch = collate(_rows(tokenizer, examples), 0, CPU)
    model.eval()
    with torch.no_grad():
        out = model(batch.input_ids, batch.attention_mask, batch.casing_ids)
    model.train()
    return torch.softmax(out.ner_logits, -1), torch.softmax(out.sentiment_logits, -1)


def _sgd_step(model: BeaconModel, tokenizer, examples: list[Example], lr: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    batch = collate(_rows(tokenizer, examples), 0, CPU)
    model.train()
    loss, _, _ = batch_loss(model(batch.input_ids, batch.attention_mask, batch.casing_ids), batch)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(lr * p.grad)
    model.zero_grad()


def test_loss_falls_and_artifact_is_written(tmp_path: Path) -> None:
    base = write_tiny_base(tmp_path / "base")
    log = ListLog()
    results = list(train(_config(base, epochs=4), synthetic_examples(48), {"dev": synthetic_examples(12, 1)},
                         out_dir=tmp_path / "out", log=log, progress=False))
    assert [r.epoch for r in results] == [1, 2, 3, 4]
    assert results[-1].train_loss < results[0].train_loss * 0.7
    assert all(r.samples_per_s > 0 and r.steps == 6 for r in results)
    assert any(r.is_best and r.artifact is not None for r in results)
    assert "dev" in results[0].dev and results[0].dev["dev"]["task"] == "ner"
    assert "sentiment" in results[0].dev["dev"]
    assert "train.epoch" in log.names() and "train.saved" in log.names()
    meta = read_meta(tmp_path / "out")
    best = max(r.score or 0.0 for r in results)
    assert meta.metrics["score"] == pytest.approx(best)
    assert set(meta.temperatures) == {"ner", "sentiment"}


def test_complementary_label_lowers_rejected_probability(tmp_path: Path) -> None:
    tokenizer = write_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    model = tiny_model(tokenizer, labels=len(LABELS))
    ex = example_from_spans("the report was okay today", None, None)
    ex.not_sentiment = "positive"
    _, before = _probs(model, tokenizer, [ex])
    for _ in range(3):
        _sgd_step(model, tokenizer, [ex])
    _, after = _probs(model, tokenizer, [ex])
    pos = SENT2ID["positive"]
    assert float(after[0, pos]) < float(before[0, pos]) - 0.01


def test_not_tags_lower_the_rejected_tag(tmp_path: Path) -> None:
    tokenizer = write_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    model = tiny_model(tokenizer, labels=len(LABELS))
    ex = example_from_spans("bob met alice", None, None)
    ex.not_tags = ["B-PER", None, None]
    ner_before, _ = _probs(model, tokenizer, [ex])
    for _ in range(3):
        _sgd_step(model, tokenizer, [ex])
    ner_after, _ = _probs(model, tokenizer, [ex])
    first = 1  # "bob" is the first sub-token after [CLS]
    assert float(ner_after[0, first, LABEL2ID["B-PER"]]) < float(ner_before[0, first, LABEL2ID["B-PER"]]) - 0.01


def test_masked_tokens_contribute_nothing(tmp_path: Path) -> None:
    tokenizer = write_tokenizer(tmp_path / "tok")
    ex = example_from_spans("Alice visited Zxq", [(0, 5, "PER")], None)
    ex.tags = ["B-PER", None, "O"]  # "visited" unknown
    (row,) = _rows(tokenizer, [ex])
    supervised = [i for i, label in enumerate(row.ner_labels) if label != IGNORE_INDEX]
    assert len(supervised) == 2  # alice and the FIRST sub-token of zxq; not specials, not ##x ##q
    assert row.ner_labels[0] == IGNORE_INDEX and row.ner_labels[-1] == IGNORE_INDEX
    labels = torch.tensor([row.ner_labels])
    nots = torch.full_like(labels, IGNORE_INDEX)
    weights = torch.ones_like(labels, dtype=torch.float32)
    logits = torch.randn(1, len(row.ner_labels), len(LABELS), requires_grad=True)
    loss = supervised_loss(logits, labels, nots, weights)
    (grad,) = torch.autograd.grad(loss, logits)
    masked = labels[0] == IGNORE_INDEX
    assert torch.count_nonzero(grad[0, masked]) == 0
    assert torch.count_nonzero(grad[0, ~masked]) > 0
    changed = logits.detach().clone()
    changed[0, masked] = torch.randn_like(changed[0, masked]) * 10
    assert torch.equal(supervised_loss(changed, labels, nots, weights), loss.detach())
    # changing the label of a masked word changes nothing either: None and IGNORE agree
    ex2 = example_from_spans("Alice visited Zxq", [(0, 5, "PER")], None)
    ex2.tags = ["B-PER", None, "O"]
    assert _rows(tokenizer, [ex2])[0].ner_labels == row.ner_labels


def test_example_weight_scales_its_loss(tmp_path: Path) -> None:
    tokenizer = write_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    model = tiny_model(tokenizer, labels=len(LABELS)).eval()
    ex = synthetic_examples(3)[0]

    def loss_for(weight: float) -> torch.Tensor:
        ex.weight = weight
        batch = collate(_rows(tokenizer, [ex]), 0, CPU)
        return batch_loss(model(batch.input_ids, batch.attention_mask, batch.casing_ids), batch)[0]

    one, two, zero = loss_for(1.0), loss_for(2.0), loss_for(0.0)
    assert float(two.detach()) == pytest.approx(2 * float(one.detach()), rel=1e-5)
    assert float(zero.detach()) == 0.0
    zero.backward()
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in model.parameters())


def test_batches_are_single_task_cover_everything_and_interleave(tmp_path: Path) -> None:
    tokenizer = write_tokenizer(tmp_path / "tok")
    rows = _rows(tokenizer, synthetic_examples(300))
    batches = plan_batches(rows, 8, seed=3, epoch=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(rows)))
    tasks = [{rows[i].task for i in b} for b in batches]
    assert all(len(t) == 1 for t in tasks)
    sentiment_at = [k for k, t in enumerate(tasks) if t == {"sentiment"}]
    assert sentiment_at and min(sentiment_at) < len(batches) // 3 and max(sentiment_at) > 2 * len(batches) // 3
    assert plan_batches(rows, 8, seed=3, epoch=0) == batches  # same plan on every rank
    assert plan_batches(rows, 8, seed=3, epoch=1) != batches
    shards = [shard_batches(batches, r, 3) for r in range(3)]
    assert len({len(s) for s in shards}) == 1


def test_max_minutes_stops_and_still_writes_an_artifact(tmp_path: Path) -> None:
    base = write_tiny_base(tmp_path / "base")
    results = list(train(_config(base, epochs=50, max_minutes=0.0), synthetic_examples(48),
                         {"dev": synthetic_examples(9, 1)}, out_dir=tmp_path / "out", log=ListLog(),
                         progress=False))
    assert len(results) == 1
    (only,) = results
    assert only.stopped == "time" and only.steps == 1
    assert only.score is not None and only.is_best and only.artifact is not None
    load_artifact(tmp_path / "out", "cpu")


def test_max_steps_stops(tmp_path: Path) -> None:
    base = write_tiny_base(tmp_path / "base")
    results = list(train(_config(base, epochs=5, max_steps=8), synthetic_examples(48), {},
                         out_dir=tmp_path / "out", log=ListLog(), progress=False))
    assert sum(r.steps for r in results) == 8
    assert results[-1].stopped == "steps"
    assert results[0].is_best  # no dev data: the training loss decides


def test_init_from_grows_the_head_and_records_lineage(tmp_path: Path) -> None:
    base = write_tiny_base(tmp_path / "base")
    first = train_to_artifact(_config(base, epochs=2), synthetic_examples(30), {}, out_dir=tmp_path / "a",
                              log=ListLog(), progress=False)
    old_model, _, old_meta = load_artifact(first, "cpu")
    new = [example_from_spans("bob bought acme shares", [(0, 3, "PER"), (11, 15, "PRODUCT")], None)] * 8
    start = starting_point(new, base_model="unused", casing=True, pooling="mean", init_from=str(first))
    assert start.ner_labels == [*old_meta.ner_labels, "B-PRODUCT", "I-PRODUCT"]
    n_old = len(old_meta.ner_labels)
    assert torch.equal(start.model.ner_head.weight[:n_old], old_model.ner_head.weight)
    second = train_to_artifact(_config(base, epochs=1), new, {}, out_dir=tmp_path / "b", log=ListLog(),
                               progress=False, init_from=first)
    meta = read_meta(second)
    assert meta.ner_labels == start.ner_labels
    assert meta.parent_version == old_meta.model_version != meta.model_version


def test_errors(tmp_path: Path) -> None:
    base = write_tiny_base(tmp_path / "base")
    with pytest.raises(TrainingError, match="no training data"):
        list(train(_config(base), [], {}, out_dir=tmp_path / "o", log=ListLog(), progress=False))
    unlabeled = [example_from_spans("the report", None, None)]
    with pytest.raises(TrainingError, match="usable label"):
        list(train(_config(base), unlabeled, {}, out_dir=tmp_path / "o", log=ListLog(), progress=False))
    poisoned = synthetic_examples(16)
    for ex in poisoned:
        ex.weight = math.nan
    with pytest.raises(TrainingError, match="NaN"):
        list(train(_config(base), poisoned, {}, out_dir=tmp_path / "o", log=ListLog(), progress=False))
    assert not (tmp_path / "o" / "beacon.json").exists()
