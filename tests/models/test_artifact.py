from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from models.analyze import Analyzer
from models.artifact import (
    FORMAT_VERSION,
    ArtifactMeta,
    load_artifact,
    new_model_version,
    read_meta,
    save_artifact,
)
from models.errors import ModelError
from tests.models.tiny import synthetic_examples, train_tiny_artifact

TEXTS = ["Alice visited Paris and Acme", "the report was terrible today", "", "Bob met Carol in London"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_artifact(tmp_path_factory.mktemp("artifact"), epochs=4)


def test_save_load_gives_identical_predictions(artifact: Path, tmp_path: Path) -> None:
    model, tokenizer, meta = load_artifact(artifact, "cpu")
    first = Analyzer.load((model, tokenizer, meta), "cpu", precision="fp32")
    copy = save_artifact(tmp_path / "copy", model, tokenizer, meta)
    shutil.rmtree(artifact.parent / "base")  # serving needs neither the base folder nor a network
    second = Analyzer.load(copy, "cpu", precision="fp32")
    a = [x.to_dict() for x in first.analyze(TEXTS)]
    b = [x.to_dict() for x in second.analyze(TEXTS)]
    assert a == b
    words = [ex.words for ex in synthetic_examples(10, seed=5)]
    assert first.predict_words(words) == second.predict_words(words)
    m2, _, _ = load_artifact(copy, "cpu")
    for (name, t1), (_, t2) in zip(model.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(t1, t2), name


def test_meta_is_complete(artifact: Path) -> None:
    meta = read_meta(artifact)
    data = json.loads((artifact / "beacon.json").read_text())
    assert data["format_version"] == FORMAT_VERSION
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", meta.model_version)
    assert meta.ner_labels[0] == "O" and set(meta.ner_labels) >= {"B-PER", "I-LOC", "B-ORG"}
    assert data["id2label"] == {str(i): label for i, label in enumerate(meta.ner_labels)}
    assert meta.sentiment_labels == ["negative", "neutral", "positive"]
    assert meta.encoder_config["model_type"] == "bert" and meta.encoder_config["hidden_size"] == 32
    assert meta.casing is True and meta.max_length == 32
    assert set(meta.temperatures) == {"ner", "sentiment"} and all(t > 0 for t in meta.temperatures.values())
    assert "dev" in meta.metrics and meta.train_config["epochs"] == 4
    assert meta.created_at and meta.parent_version is None


@pytest.mark.parametrize("missing", ["model.safetensors", "beacon.json", "tokenizer_config.json"])
def test_missing_file_names_it(artifact: Path, tmp_path: Path, missing: str) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(artifact, broken)
    (broken / missing).unlink()
    with pytest.raises(ModelError, match=re.escape(missing)):
        load_artifact(broken, "cpu")


def test_bad_folders(tmp_path: Path, artifact: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_artifact(tmp_path / "nowhere", "cpu")
    broken = tmp_path / "broken"
    shutil.copytree(artifact, broken)
    (broken / "beacon.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        load_artifact(broken, "cpu")
    meta = json.loads((artifact / "beacon.json").read_text())
    meta["format_version"] = 99
    (broken / "beacon.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="format_version"):
        load_artifact(broken, "cpu")
    meta["format_version"] = FORMAT_VERSION
    meta["ner_labels"] = meta["ner_labels"] + ["B-NEW"]
    (broken / "beacon.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="do not fit"):
        load_artifact(broken, "cpu")
    (broken / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError):
        load_artifact(broken, "cpu")


def test_labels_must_match_the_heads(artifact: Path, tmp_path: Path) -> None:
    model, tokenizer, meta = load_artifact(artifact, "cpu")
    bad = ArtifactMeta(**{**meta.__dict__, "ner_labels": ["O"]})
    with pytest.raises(ModelError, match="entity labels"):
        save_artifact(tmp_path / "x", model, tokenizer, bad)


def test_versions_are_unique_and_sortable() -> None:
    versions = {new_model_version() for _ in range(50)}
    assert len(versions) == 50
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", v) for v in versions)
