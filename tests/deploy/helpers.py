"""Shared readers for the deployment checks: paths, tools, YAML, .env, .dockerignore, the Dockerfile."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from bot.settings import Settings, _env_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
GRAFANA = DEPLOY / "grafana" / "beacon.json"
RUNBOOK = ROOT / "docs" / "operations.md"

INSTALL_HINT = "install the dev extra: pip install -e '.[dev]'"


# --- tools -------------------------------------------------------------------------------------------
def tool(name: str) -> str:
    """Path of a command-line tool: next to this Python (a venv), on PATH, or next to the base Python
    (a venv made with --system-site-packages); a failed test when missing."""
    venv, base = Path(sys.executable).parent / name, Path(sys.base_prefix) / "bin" / name
    found = str(venv) if venv.is_file() else shutil.which(name) or (str(base) if base.is_file() else None)
    if found is None:
        raise AssertionError(f"`{name}` is not installed ({INSTALL_HINT})")
    return found


def run_tool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool(args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=300)


# --- settings --------------------------------------------------------------------------------------
def setting_names() -> set[str]:
    """Environment-variable names of every field of bot.settings.Settings."""
    return {_env_name(name, info.validation_alias).upper() for name, info in Settings.model_fields.items()}


def field_by_env() -> dict[str, str]:
    return {_env_name(name, info.validation_alias).upper(): name for name, info in Settings.model_fields.items()}


def secret_names() -> set[str]:
    """Settings that hold secrets: every SecretStr field, and DATABASE_URL (it carries a password)."""
    names = {"DATABASE_URL"}
    for env, field in field_by_env().items():
        annotation = str(Settings.model_fields[field].annotation)
        if "SecretStr" in annotation or Settings.model_fields[field].annotation is SecretStr:
            names.add(env)
    return names


# --- files -----------------------------------------------------------------------------------------
def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def k8s_manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/k8s (not kustomization.yaml), keyed by file name."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        assert len(docs) == 1, f"{path.name}: expected one object per file, found {len(docs)}"
        out[path.name] = docs[0]
    return out


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in k8s_manifests().values() if o.get("kind") == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name} in deploy/k8s, found {len(found)}"
    return found[0]


@dataclass(frozen=True)
class EnvEntry:
    name: str
    value: str
    active: bool  # False: a commented `# NAME=value` line (the setting keeps its default)
    line: int


_ACTIVE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
_COMMENTED = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$")


def env_entries(path: Path = ENV_EXAMPLE) -> list[EnvEntry]:
    entries: list[EnvEntry] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip()
        for pattern, active in ((_ACTIVE, True), (_COMMENTED, False)):
            match = pattern.match(line)
            if match:
                entries.append(EnvEntry(match.group(1), match.group(2), active, number))
    return entries


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def compose_variables(text: str) -> set[str]:
    """Names interpolated as ${NAME...} in a compose file ($$ escapes excluded)."""
    return {m.group(1) for m in INTERPOLATION.finditer(text.replace("$$", ""))}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err} against ``env``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if op in (":-", "-"):
            use_default = current is None or (op == ":-" and current == "")
            return arg if use_default else str(current)
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise AssertionError(f"compose would stop: {name} unset ({arg})")
            return current
        return current or ""

    parts = value.split("$$")  # `$$` is a literal `$`
    return "$".join(INTERPOLATION.sub(one, part) for part in parts)


# --- .dockerignore ---------------------------------------------------------------------------------
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore matching: Go filepath.Match plus `**` for any number of directories."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + fnmatch.translate(pattern[i : end + 1])[4:-3], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore_patterns(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern[str]]]:
    patterns: list[tuple[bool, re.Pattern[str]]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        cleaned = line.lstrip("!").strip().lstrip("/").rstrip("/")
        if cleaned.startswith("./"):
            cleaned = cleaned[2:]
        patterns.append((negate, _pattern_regex(cleaned)))
    return patterns


def docker_ignored(relpath: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether ``relpath`` stays out of the build context (a match on any parent excludes it too)."""
    parts = relpath.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        ignored = False
        for negate, regex in patterns:
            if regex.match(prefix):
                ignored = not negate
        if ignored:
            return True
    return False


# --- Dockerfile --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to; -1 before the first FROM


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    out: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, args.strip(), stage))
    return out


def exec_form(args: str) -> list[str]:
    """The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD; a failed test for shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not exec (JSON) form: {args!r}") from exc
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value
