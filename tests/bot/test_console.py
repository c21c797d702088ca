"""Console mode: the whole loop scripted through stdin, on the bot's real listeners."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.console import run_console
from bot.deps import Deps
from bot.log import get_logger
from bot.model_holder import ModelHolder
from bot.storage.db import make_engine, make_session_factory, upgrade
from bot.storage.tables import BotPost, Document, Feedback, Watch
from tests.bot.conftest import MODEL_VERSION, register_active

TEXT = "Acme Corp charged me twice in Paris"


def entity_rows(models: ModelHolder, text: str) -> int:
    return min(len(models.current().analyze([text])[0].entities), 20)


def script(rows: int) -> str:
    fix = ["fix", "1", *["remove"] * rows, "Zorro", "ORG", "Acme Corp"]
    lines = [TEXT, "+1", "-1", "why", *fix, "/beacon watch Acme", "/beacon model", "home", "quit"]
    return "\n".join(lines) + "\n"


def rows_of(sessions: sessionmaker[Session], model: Any) -> list[Any]:
    with sessions() as session:
        return list(session.query(model).order_by(model.id))


def test_console_conversation_scripted_through_stdin(make_settings: Any, sessions: sessionmaker[Session],
                                                     bot_model: str) -> None:
    settings = make_settings(BEACON_DEVICE="cpu")
    models = ModelHolder(sessions, device="cpu")
    deps = Deps(settings=settings, sessions=sessions, models=models, log=get_logger("tests.console"))
    out = io.StringIO()
    code = run_console(deps, stdin=io.StringIO(script(entity_rows(models, TEXT))), stdout=out, echo=True)
    text = out.getvalue()
    assert code == 0
    assert "you ▸ " + TEXT in text and "Sentiment:" in text and MODEL_VERSION in text
    assert "[Why?] [Correct it]" in text
    assert "Thanks, recorded" in text and "Can you tell me the right answer?" in text and "Why " in text
    assert "is not in the message" in text and "Correction saved" in text
    assert "Watching Acme" in text and "Active model:" in text and "Labels:" in text
    (doc,) = rows_of(sessions, Document)
    assert doc.text == TEXT and doc.source == "slack"
    assert {p.kind for p in rows_of(sessions, BotPost)} == {"analysis", "report"}
    kinds = [(f.kind, f.retracted_at is None) for f in rows_of(sessions, Feedback)]
    assert kinds == [("confirm", False), ("reject", True), ("correction", True)]
    correction = rows_of(sessions, Feedback)[-1].payload
    assert correction["sentiment"] == "negative" and correction["source"] == "modal"
    assert correction["entities"] == [{"start": 0, "end": 9, "label": "ORG", "text": "Acme Corp"}]
    assert [w.name for w in rows_of(sessions, Watch)] == ["Acme"]


def console_db(tmp_path: Path, model_dir: Path) -> tuple[str, sessionmaker[Session], int]:
    db = f"sqlite:///{tmp_path / 'console.db'}"
    engine = make_engine(db)
    upgrade(engine)
    console_sessions = make_session_factory(engine)
    register_active(console_sessions, model_dir)
    return db, console_sessions, entity_rows(ModelHolder(console_sessions, device="cpu"), TEXT)


def test_beacon_run_without_tokens_is_the_console(tmp_path: Path, bot_model_dir: Path) -> None:
    """The README's main command, as a subprocess: migrations, the model, the scheduler, the console."""
    db, console_sessions, rows = console_db(tmp_path, bot_model_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))}
    env.update(DATABASE_URL=db, BEACON_HOME=str(tmp_path / "home"), BEACON_DEVICE="cpu", HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()", "run"],
                          input=script(rows), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Correction saved" in done.stdout and "Sentiment:" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert (tmp_path / "home" / "logs" / "console.log").is_file()
    assert [f.kind for f in rows_of(console_sessions, Feedback)] == ["confirm", "reject", "correction"]


@pytest.mark.usefixtures("restore_logging")
def test_beacon_console_ignores_slack_tokens(tmp_path: Path, bot_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`beacon console` through the CLI entry point (in process), even with Slack settings present."""
    from bot.cli import main

    db, console_sessions, rows = console_db(tmp_path, bot_model_dir)
    for key in [k for k in os.environ if k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))]:
        monkeypatch.delenv(key)
    env = {"DATABASE_URL": db, "BEACON_HOME": str(tmp_path / "home"), "BEACON_DEVICE": "cpu",
           "BEACON_MODEL_RELOAD_SECONDS": "3600", "SLACK_SIGNING_SECRET": "abc123abc123",
           "SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["beacon", "console"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(script(rows)))
    main()  # returns normally (exit code 0)
    assert "Correction saved" in capsys.readouterr().out
    assert [f.kind for f in rows_of(console_sessions, Feedback)] == ["confirm", "reject", "correction"]
