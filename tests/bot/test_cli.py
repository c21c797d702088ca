"""The `beacon` console script as a user runs it: a subprocess, real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def beacon(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))}
    full.update(env)
    full.pop("BEACON_TEST_POSTGRES_URL", None)
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        env=full, cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def test_help_on_every_subcommand(tmp_path: Path) -> None:
    out = beacon("--help", env={}, cwd=tmp_path)
    assert out.returncode == 0 and "config" in out.stdout and "db" in out.stdout
    for sub in (["config"], ["db", "upgrade"], ["version"]):
        res = beacon(*sub, "--help", env={}, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "Usage" in res.stdout


def test_config_masks_secrets(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-999-very-secret", "BEACON_HOME": str(tmp_path / "h")}
    out = beacon("config", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["SLACK_BOT_TOKEN"] == "********"
    assert "xoxb-999-very-secret" not in out.stdout + out.stderr


def test_db_upgrade(db_url: str, tmp_path: Path) -> None:
    out = beacon("db", "upgrade", env={"DATABASE_URL": db_url, "BEACON_HOME": str(tmp_path)}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "revision 0001" in out.stdout
    again = beacon("db", "current", env={"DATABASE_URL": db_url}, cwd=tmp_path)
    assert again.stdout.strip() == "0001"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "definitely not a url"}, "error: DATABASE_URL:"),
        ({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nope"}, "error: DATABASE_URL: cannot connect"),
        ({"BEACON_TYPO": "1"}, "error: BEACON_TYPO: unknown setting"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(env: dict[str, str], expected: str, tmp_path: Path) -> None:
    out = beacon("db", "upgrade", env=env, cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), out.stderr
    assert "Traceback" not in out.stderr
