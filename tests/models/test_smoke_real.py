"""Real weights: fine-tune the packaged MiniLM on 64 sentences; it must learn them.

Marked slow, but it runs in CI (about a minute or two on 2 CPU cores, no network).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from models.analyze import Analyzer
from models.artifact import load_artifact, read_meta, save_artifact
from models.data import Example, example_from_spans
from models.scoring import evaluate_examples
from models.train import TrainConfig, train

pytestmark = pytest.mark.slow

PEOPLE = ["Maria Lopez", "John Smith", "Angela Merkel", "Tim Cook", "Sarah Connor", "Ravi Patel", "Emma Brown",
          "Kenji Tanaka"]
ORGS = ["Microsoft", "Siemens", "Barclays", "Toyota", "Unilever", "Deutsche Bank", "Nestle", "Airbus"]
PLACES = ["Berlin", "Tokyo", "London", "Madrid", "Chicago", "Mumbai", "Paris", "Toronto"]
TEMPLATES = {
    "positive": [
        "{per} praised {org} for excellent results in {loc} .",
        "Great news : {org} hired {per} to lead its growing team in {loc} .",
        "{per} said the new {org} office in {loc} is a wonderful success .",
    ],
    "negative": [
        "{per} blamed {org} for terrible losses in {loc} .",
        "Awful quarter : {org} fired {per} after the failure in {loc} .",
        "{per} said the {org} plant in {loc} is a disaster .",
    ],
    "neutral": [
        "{per} will meet {org} officials in {loc} on Monday .",
        "{org} said {per} visited {loc} last week .",
    ],
}


def _example(template: str, per: str, org: str, loc: str, sentiment: str) -> Example:
    text = template.format(per=per, org=org, loc=loc)
    entities = [(text.index(name), text.index(name) + len(name), kind)
                for name, kind in ((per, "PER"), (org, "ORG"), (loc, "LOC"))]
    return example_from_spans(text, entities, sentiment, source=f"smoke:{len(text)}")


def examples() -> list[Example]:
    out: list[Example] = []
    names = itertools.cycle(range(len(PEOPLE)))
    for round_ in range(8):
        for sentiment, templates in TEMPLATES.items():
            for t, template in enumerate(templates):
                i = next(names)
                out.append(_example(template, PEOPLE[i], ORGS[(i + round_) % 8], PLACES[(i + 2 * round_ + t) % 8],
                                    sentiment))
    return out[:64]


class _Log:
    def info(self, event: str, **kw: object) -> None:
        pass


@pytest.fixture()
def all_cores() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(before)


def test_fine_tune_minilm_learns_its_training_data(tmp_path: Path, all_cores: None) -> None:
    data = examples()
    assert len(data) == 64 and {ex.sentiment for ex in data} == {"positive", "negative", "neutral"}
    config = TrainConfig(base_model="default", epochs=8, batch_size=16, lr=3e-4, warmup_ratio=0.1,
                         device="cpu", seed=7, patience=0, max_length=64)
    results = list(train(config, data, {"train": data}, out_dir=tmp_path / "model", log=_Log(), progress=False))
    losses = [r.train_loss for r in results]
    assert losses[-1] < losses[0] * 0.5, losses

    analyzer = Analyzer.load(tmp_path / "model", "cpu")
    report = evaluate_examples(analyzer, data)
    assert report["f1"] >= 0.6, report
    assert report["sentiment"]["accuracy"] >= 0.8, report

    # the artifact reproduces the in-memory model's predictions exactly
    meta = read_meta(tmp_path / "model")
    saved = meta.metrics["dev"]["train"]
    assert report["f1"] == saved["f1"]
    assert report["sentiment"]["confusion"] == saved["sentiment"]["confusion"]

    # save → load → identical predictions
    model, tokenizer, meta = load_artifact(tmp_path / "model", "cpu")
    save_artifact(tmp_path / "copy", model, tokenizer, meta)
    again = Analyzer.load(tmp_path / "copy", "cpu")
    texts = [ex.text for ex in data[:16]] + ["Lena Fischer joined Bosch in Stuttgart and loves it ."]
    assert [a.to_dict() for a in analyzer.analyze(texts)] == [a.to_dict() for a in again.analyze(texts)]
