"""`beacon serve` / `run` / `console` entry points: help, and one-line errors with exit code 2.

In-process through ``bot.cli.main`` (the console script's entry point) with a clean environment;
the console-script subprocess itself is exercised in test_console.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bot.cli import main

pytestmark = pytest.mark.usefixtures("restore_logging")


def run_main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str, env: dict[str, str]) -> int:
    for key in [k for k in os.environ if k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))]:
        monkeypatch.delenv(key, raising=False)
    for key, value in {"BEACON_HOME": str(tmp_path / "home"), **env}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["beacon", *args])
    try:
        main()
    except SystemExit as exited:
        return int(exited.code or 0)
    return 0


@pytest.mark.parametrize(("env", "missing"), [
    ({"SLACK_BOT_TOKEN": "xoxb-1-2-abc"}, "SLACK_SIGNING_SECRET"),
    ({"SLACK_SIGNING_SECRET": "abc123abc123"}, "SLACK_BOT_TOKEN"),
])
def test_serve_without_its_secrets_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], env: dict[str, str],
    missing: str,
) -> None:
    assert run_main(monkeypatch, tmp_path, "serve", "--port", "0", env=env) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: {missing}: required but not set"]


def test_serving_commands_have_help(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "serve", "console"):
        assert run_main(monkeypatch, tmp_path, command, "--help", env={}) == 0
        out = capsys.readouterr().out
        assert "Usage" in out and command in out
        if command == "serve":
            assert "--host" in out and "--port" in out
