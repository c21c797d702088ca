"""`beacon train`, `eval`, `analyze` and `models list|promote` as a user runs them (subprocesses),
on a tiny random BERT base so no real weights are needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.models.tiny import write_tiny_base

CONLL = """-DOCSTART- -X- -X- O

Acme NNP B-NP B-ORG
hired VBD B-VP O
Dana NNP B-NP B-PER
in IN B-PP O
Berlin NNP B-NP B-LOC
. . O O

Globex NNP B-NP B-ORG
left VBD B-VP O
Paris NNP B-NP B-LOC
"""
FPB = "Profits rose sharply .@positive\r\nThe company cut jobs .@negative\r\nThe board met on Monday .@neutral\r\n"


def beacon(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))}
    full.update(env, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", *args], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def workspace(tmp_path: Path, db_url: str) -> tuple[Path, dict[str, str]]:
    (tmp_path / "train.conll").write_text(CONLL * 4)
    (tmp_path / "fpb.txt").write_bytes((FPB * 4).encode("latin-1"))
    write_tiny_base(tmp_path / "base")
    return tmp_path, {"DATABASE_URL": db_url, "BEACON_HOME": str(tmp_path / "home"), "BEACON_LOG_LEVEL": "WARNING"}


def test_train_eval_analyze_promote(workspace: tuple[Path, dict[str, str]]) -> None:
    root, env = workspace
    conll, fpb = f"conll:{root / 'train.conll'}", f"fpb:{root / 'fpb.txt'}"
    trained = beacon("train", "--train", conll, "--train", fpb, "--dev", conll, "--dev", fpb,
                     "--base-model", str(root / "base"), "--epochs", "2", "--batch-size", "4", "--lr", "0.003",
                     "--device", "cpu", env=env, cwd=root)
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = json.loads(trained.stdout[trained.stdout.index("{"):])
    version, path = result["version"], Path(result["path"])
    assert (path / "model.safetensors").is_file() and (path / "beacon.json").is_file()
    assert result["promoted"] is False

    listed = json.loads(beacon("models", "list", "--json", env=env, cwd=root).stdout)
    assert [(r["version"], r["status"]) for r in listed] == [(version, "candidate")]
    no_active = beacon("analyze", "hello", env=env, cwd=root)
    assert no_active.returncode == 1 and "no active model" in no_active.stderr

    promoted = beacon("models", "promote", version, "--reason", "test", env=env, cwd=root)
    assert promoted.returncode == 0, promoted.stderr
    first = beacon("eval", "--model", "active", "--test", conll, "--test", fpb, "--json", env=env, cwd=root)
    second = beacon("eval", "--model", str(path), "--test", conll, "--test", fpb, "--json", env=env, cwd=root)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout == second.stdout  # identical numbers for identical inputs
    report = json.loads(first.stdout)
    assert set(report) == {conll, fpb}
    assert report[conll]["task"] == "ner" and {"f1", "precision", "recall", "per_type", "n"} <= set(report[conll])
    assert report[fpb]["task"] == "sentiment" and report[fpb]["n"] == 12
    assert {"accuracy", "macro_f1", "confusion", "ece"} <= set(report[fpb])

    texts = root / "texts.txt"
    texts.write_text("Acme hired Dana in Berlin\n\n🙂🙂\n")
    analyzed = beacon("analyze", "--file", str(texts), env=env, cwd=root)
    assert analyzed.returncode == 0, analyzed.stderr
    lines = [json.loads(line) for line in analyzed.stdout.splitlines()]
    assert [x["text"] for x in lines] == ["Acme hired Dana in Berlin", "", "🙂🙂"]
    for item in lines:
        assert item["model_version"] == version
        assert item["sentiment"]["label"] in {"negative", "neutral", "positive"}
        for ent in item["entities"]:
            assert item["text"][ent["start"]:ent["end"]] == ent["text"]


def test_bad_data_names_file_and_line(workspace: tuple[Path, dict[str, str]]) -> None:
    root, env = workspace
    bad = root / "bad.txt"
    bad.write_text("a good line@positive\nno label here\n")
    out = beacon("train", "--train", f"fpb:{bad}", "--base-model", str(root / "base"), "--device", "cpu",
                 env=env, cwd=root)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:2:"), out.stderr
    assert "Traceback" not in out.stderr
