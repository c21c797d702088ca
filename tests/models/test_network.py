from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.errors import ModelError
from models.labels import build_label_list, extend_label_list
from models.network import (
    CASE_DIGIT,
    CASE_LOWER,
    CASE_MIXED,
    CASE_OTHER,
    CASE_PUNCT,
    CASE_TITLE,
    CASE_UPPER,
    BeaconModel,
    casing_feature,
    encoder_config_from_dict,
)
from tests.models.tiny import tiny_config, tiny_model, write_tokenizer


@pytest.fixture()
def tokenizer(tmp_path: Path):  # type: ignore[no-untyped-def]
    return write_tokenizer(tmp_path / "tok")


def _inputs(tokenizer, casing: list[int] | None = None):  # type: ignore[no-untyped-def]
    enc = tokenizer(["alice visited paris", "the report"], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    cas = torch.zeros_like(ids) if casing is None else torch.tensor([casing] * 2)[:, : ids.shape[1]]
    return ids, mask, cas


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("paris", CASE_LOWER),
        ("Paris", CASE_TITLE),
        ("IBM", CASE_UPPER),
        ("iPhone", CASE_MIXED),
        ("McDonald", CASE_MIXED),
        ("2024", CASE_DIGIT),
        ("3.5", CASE_DIGIT),
        ("...", CASE_PUNCT),
        ("😀", CASE_PUNCT),
        ("東京", CASE_OTHER),
        ("A", CASE_TITLE),
    ],
)
def test_casing_feature(word: str, expected: int) -> None:
    assert casing_feature(word) == expected


def test_one_forward_gives_both_heads(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(tokenizer, labels=7)
    ids, mask, cas = _inputs(tokenizer)
    out = model(ids, mask, cas)
    assert out.ner_logits.shape == (2, ids.shape[1], 7)
    assert out.sentiment_logits.shape == (2, 3)
    (out.ner_logits.sum() + out.sentiment_logits.sum()).backward()
    assert model.ner_head.weight.grad is not None and model.sentiment_head.weight.grad is not None
    assert model.encoder.get_input_embeddings().weight.grad is not None


def test_casing_features_change_the_encoding(tokenizer) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = tiny_model(tokenizer).eval()
    ids, mask, _ = _inputs(tokenizer)
    lower = torch.full_like(ids, CASE_LOWER)
    title = torch.full_like(ids, CASE_TITLE)
    with torch.no_grad():
        a = model(ids, mask, lower).ner_logits
        b = model(ids, mask, title).ner_logits
        plain = model(ids, mask, None).ner_logits
    assert not torch.equal(a, b)
    assert model.casing_embeddings is not None
    # initialised near zero: the encoder starts almost as pretrained
    assert float(model.casing_embeddings.weight.detach().abs().max()) < 0.02
    assert torch.allclose(a, plain, atol=0.05)


def test_casing_off_ignores_casing_ids(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(tokenizer, casing=False).eval()
    assert model.casing_embeddings is None
    assert not any("casing" in name for name in model.state_dict())
    ids, mask, _ = _inputs(tokenizer)
    with torch.no_grad():
        a = model(ids, mask, torch.full_like(ids, CASE_LOWER)).ner_logits
        b = model(ids, mask, torch.full_like(ids, CASE_UPPER)).ner_logits
    assert torch.equal(a, b)


def test_grow_ner_head_keeps_old_rows_exactly(tokenizer) -> None:  # type: ignore[no-untyped-def]
    old_labels = build_label_list(["LOC", "PER"])
    new_labels = extend_label_list(old_labels, ["PER", "PRODUCT", "LOC"])
    assert new_labels[: len(old_labels)] == old_labels
    assert new_labels[len(old_labels) :] == ["B-PRODUCT", "I-PRODUCT"]

    torch.manual_seed(1)
    model = tiny_model(tokenizer, labels=len(old_labels)).eval()
    with torch.no_grad():
        model.ner_head.weight.normal_()  # "trained" rows, unlike any fresh initialisation
        model.ner_head.bias.normal_()
    old_w = model.ner_head.weight.detach().clone()
    old_b = model.ner_head.bias.detach().clone()
    ids, mask, cas = _inputs(tokenizer)
    with torch.no_grad():
        before = model(ids, mask, cas).ner_logits
    model.grow_ner_head(len(new_labels))
    assert model.num_ner_labels == len(new_labels)
    assert torch.equal(model.ner_head.weight[: len(old_labels)], old_w)
    assert torch.equal(model.ner_head.bias[: len(old_labels)], old_b)
    with torch.no_grad():
        after = model(ids, mask, cas).ner_logits
    assert torch.equal(after[..., : len(old_labels)], before)
    assert after.shape[-1] == len(new_labels)
    # the new rows are trainable parameters of the model
    assert any(p is model.ner_head.weight for p in model.parameters())


def test_grow_ner_head_refuses_to_shrink(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(tokenizer, labels=5)
    with pytest.raises(ModelError, match="shrink"):
        model.grow_ner_head(3)
    model.grow_ner_head(5)  # same size: no-op
    assert model.num_ner_labels == 5


def test_encoder_config_round_trip(tokenizer) -> None:  # type: ignore[no-untyped-def]
    config = tiny_config(len(tokenizer))
    model = BeaconModel(config, 3, pooling="cls")
    rebuilt = encoder_config_from_dict(model.settings()["encoder_config"])
    assert rebuilt.hidden_size == 32 and rebuilt.num_hidden_layers == 2
    assert rebuilt.vocab_size == len(tokenizer)
    clone = BeaconModel(rebuilt, 3, pooling="cls")
    assert set(clone.state_dict()) == set(model.state_dict())
    assert "encoder.pooler.dense.weight" not in model.state_dict()


def test_bad_settings_raise(tokenizer) -> None:  # type: ignore[no-untyped-def]
    config = tiny_config(len(tokenizer))
    with pytest.raises(ModelError):
        BeaconModel(config, 3, pooling="max")
    with pytest.raises(ModelError):
        BeaconModel(config, 0)
    with pytest.raises(ModelError):
        encoder_config_from_dict({"hidden_size": 4})
