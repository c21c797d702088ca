"""Every `beacon` command the deployment files and the runbook give resolves to a real CLI command
with real options; the runbook's SQL runs on the real schema, its PromQL names real metrics, and
every Docker or Kubernetes command in it is marked as needing them."""

from __future__ import annotations

import re
import shlex
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import typer.main

from tests.deploy.helpers import (
    COMPOSE,
    RUNBOOK,
    dockerfile_instructions,
    exec_form,
    k8s_manifests,
    load_yaml,
)
from tests.deploy.promql import check_query

MARKS = {"docker": "(needs Docker)", "kubectl": "(needs Kubernetes)"}


def _cli() -> Any:
    import bot.cli

    group = typer.main.get_command(bot.cli.app)
    assert _is_group(group)
    return group


def _is_group(cmd: Any) -> bool:
    # Duck-typed: Typer may use click or its own vendored copy of it.
    return hasattr(cmd, "commands")


def _params(cmd: Any, kind: str) -> list[Any]:
    return [p for p in cmd.params if p.param_type_name == kind]


def resolve(argv: list[str], root: Any) -> Any:
    """Walk ``beacon ...`` through the CLI; a failed test names the first thing that does not exist."""
    assert argv[0] == "beacon", argv
    cmd = root
    positionals = 0
    tokens = argv[1:]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-"):
            name = tok.split("=", 1)[0]
            options = [p for p in _params(cmd, "option") if name in (*p.opts, *p.secondary_opts)]
            assert options, f"`{' '.join(argv)}`: `{cmd.name}` has no option {name}"
            if not options[0].is_flag and "=" not in tok:
                i += 1  # the option's value
        elif _is_group(cmd):
            assert tok in cmd.commands, f"`{' '.join(argv)}`: no command `{tok}` (known: {sorted(cmd.commands)})"
            cmd, positionals = cmd.commands[tok], 0
        else:
            positionals += 1
        i += 1
    assert not _is_group(cmd), f"`{' '.join(argv)}` is incomplete: a subcommand is needed"
    arguments = _params(cmd, "argument")
    required = sum(1 for a in arguments if a.required)
    variadic = any(a.nargs == -1 for a in arguments)
    assert positionals >= required, f"`{' '.join(argv)}`: {required} argument(s) required"
    assert variadic or positionals <= len(arguments), f"`{' '.join(argv)}`: too many arguments"
    return cmd


# --- commands in the deployment files -------------------------------------------------------------
def _deploy_commands() -> list[tuple[str, list[str]]]:
    runtime = [i for i in dockerfile_instructions() if i.stage == max(j.stage for j in dockerfile_instructions())]
    entry = next(exec_form(i.args) for i in reversed(runtime) if i.keyword == "ENTRYPOINT")
    cmd = next(exec_form(i.args) for i in reversed(runtime) if i.keyword == "CMD")
    out = [("Dockerfile", entry + cmd)]
    for name, svc in load_yaml(COMPOSE)["services"].items():
        if "command" in svc and name != "postgres":
            out.append((f"compose:{name}", ["beacon", *svc["command"]]))
    for file, obj in k8s_manifests().items():
        if obj["kind"] in {"Deployment", "CronJob"}:
            spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
            pod = spec["template"]["spec"]
            for c in [*pod.get("initContainers", []), *pod["containers"]]:
                out.append((f"{file}:{c['name']}", ["beacon", *c["args"]]))
    return out


@pytest.mark.parametrize(("where", "argv"), _deploy_commands(), ids=[w for w, _ in _deploy_commands()])
def test_deploy_file_commands_exist_in_the_cli(where: str, argv: list[str]) -> None:
    resolve(argv, _cli())


# --- the runbook ------------------------------------------------------------------------------------
def _blocks(lang: str) -> list[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    return re.findall(rf"^[ \t]*```{lang}\n(.*?)^[ \t]*```", text, flags=re.MULTILINE | re.DOTALL)


def _shell_lines() -> list[str]:
    lines: list[str] = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


def _strip_comment(line: str) -> str:
    return shlex.join(shlex.split(line, comments=True))


def _runbook_beacon_commands() -> list[str]:
    found: list[str] = []
    for line in _shell_lines():
        words = shlex.split(line, comments=True)
        for n, word in enumerate(words):
            inside = n == 0 or words[n - 1] == "--" or (n >= 2 and words[n - 2] == "exec")
            if word == "beacon" and inside:
                found.append(shlex.join(words[n:]))
    text = RUNBOOK.read_text(encoding="utf-8")
    found += [m.replace("[", "").replace("]", "") for m in re.findall(r"`(beacon [^`]+)`", text)]
    return sorted(set(found))


def test_runbook_has_the_required_sections() -> None:
    text = RUNBOOK.read_text(encoding="utf-8").lower()
    for topic in ("manifest", "socket mode", "10 socket mode connections", "backup", "restore", "rotating",
                  "rolling back", "metrics", "retraining fails", "(needs docker)", "(needs kubernetes)"):
        assert topic in text, f"docs/operations.md lacks {topic!r}"


@pytest.mark.parametrize("command", _runbook_beacon_commands())
def test_runbook_beacon_commands_exist_in_the_cli(command: str) -> None:
    resolve(shlex.split(command), _cli())


def test_runbook_marks_every_docker_and_kubectl_command() -> None:
    for line in _shell_lines():
        tool = line.split()[0]
        if tool in MARKS:
            assert line.endswith(MARKS[tool]), f"mark with `# {MARKS[tool]}`: {line}"
    text = RUNBOOK.read_text(encoding="utf-8")
    for match in re.finditer(r"`((docker|kubectl) [^`]+)`", text):
        after = text[match.end() : match.end() + 20]
        assert MARKS[match.group(2)] in after, f"inline command not marked: {match.group(1)}"


def test_runbook_promql_uses_real_metrics() -> None:
    exprs = [line.strip() for block in _blocks("promql") for line in block.splitlines() if line.strip()]
    assert len(exprs) >= 5, "the runbook should suggest alert rules"
    for expr in exprs:
        check_query(expr)


def _runbook_sql() -> list[str]:
    sql: list[str] = []
    for line in _shell_lines():
        words = shlex.split(line, comments=True)
        if words[0] == "sqlite3" and len(words) >= 3 and not words[2].startswith("."):
            sql.append(words[2])
        if words[0] == "psql" and "-c" in words:
            sql.append(words[words.index("-c") + 1])
    return sql


def test_runbook_sql_runs_on_the_migrated_schema(tmp_path: Path) -> None:
    from bot.storage.db import make_engine, upgrade

    db = tmp_path / "beacon.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine, "head")
    engine.dispose()
    statements = _runbook_sql()
    assert statements, "the runbook should show how to read training_runs"
    with sqlite3.connect(db) as conn:
        for statement in statements:
            conn.execute(statement).fetchall()


def test_runbook_sqlite_commands_use_the_default_database_path() -> None:
    for line in _shell_lines():
        words: list[Any] = shlex.split(line, comments=True)
        if words[0] == "sqlite3" and words[1].endswith("beacon.db") and "backup" not in words[1]:
            assert words[1] == "var/beacon.db", line


def test_resolve_rejects_unknown_commands_and_options() -> None:
    root = _cli()
    resolve(["beacon", "db", "upgrade"], root)
    for bad in (["beacon", "nosuch"], ["beacon", "db"], ["beacon", "config", "--nosuch"],
                ["beacon", "db", "upgrade", "a", "b"]):
        with pytest.raises(AssertionError):
            resolve(bad, root)
    assert _strip_comment("beacon config  # note") == "beacon config"
