"""deploy/compose.yaml and deploy/.env.example, beyond the schema: the stack's shape, and an
.env.example that lists every setting of bot.settings.Settings, documented, with valid values."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.settings import Settings, load_settings
from tests.deploy.helpers import (
    COMPOSE,
    ENV_EXAMPLE,
    compose_variables,
    env_entries,
    field_by_env,
    interpolate,
    load_yaml,
    secret_names,
    setting_names,
)

BEACON_SERVICES = ("migrate", "serve", "worker", "retrain")
RESTART_POLICIES = re.compile(r"no|always|unless-stopped|on-failure(:\d+)?")
# Settings .env.example deliberately sets away from the default, for the container.
DEPLOY_OVERRIDES = {"BEACON_HOME", "BEACON_LOG_FORMAT"}


def _compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def _services() -> dict[str, Any]:
    return _compose()["services"]


def _example_env() -> dict[str, str]:
    return {e.name: e.value for e in env_entries() if e.active}


def _compose_only() -> set[str]:
    return {e.name for e in env_entries()} - setting_names()


# --- the stack ------------------------------------------------------------------------------------
def test_postgres_16_with_volume_and_healthcheck() -> None:
    pg = _services()["postgres"]
    assert re.fullmatch(r"postgres:16([.\-].*)?", pg["image"]), pg["image"]
    volumes = [v.split(":") for v in pg["volumes"]]
    data = [src for src, dst, *_ in volumes if dst == "/var/lib/postgresql/data"]
    assert data and data[0] in _compose()["volumes"], "PostgreSQL data needs a named volume"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])


def test_beacon_services_share_the_data_volume_env_file_and_database() -> None:
    services = _services()
    for name in BEACON_SERVICES:
        svc = services[name]
        assert "/data" in [v.split(":")[1] for v in svc["volumes"]], f"{name}: /data not mounted"
        source = next(v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == "/data")
        assert source in _compose()["volumes"], f"{name}: /data must be a shared named volume"
        assert ".env" in svc["env_file"], f"{name}: env_file .env missing"
        assert svc["environment"]["BEACON_HOME"] == "/data"
        assert "@postgres:5432/" in svc["environment"]["DATABASE_URL"]
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        if name != "migrate":
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_no_service_has_a_fixed_container_name_and_restarts_are_valid() -> None:
    for name, svc in _services().items():
        assert "container_name" not in svc, f"{name}: container_name prevents --scale"
        if "restart" in svc:
            assert RESTART_POLICIES.fullmatch(svc["restart"]), f"{name}: bad restart {svc['restart']!r}"


def test_serve_is_http_mode_on_a_port_range_with_a_healthcheck() -> None:
    serve = _services()["serve"]
    command = serve["command"]
    assert command[0] == "serve"
    port = command[command.index("--port") + 1]
    for mapping in serve["ports"]:
        resolved = interpolate(mapping, _example_env())
        host, container = resolved.rsplit(":", 1)
        assert container == port, f"serve publishes {container}, listens on {port}"
        assert re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+-\d+", host), (
            f"serve publishes fixed host port {host!r}: a second replica would conflict; use a range"
        )
        low, high = map(int, host.split(":")[-1].split("-"))
        assert high - low >= 1
    test = " ".join(serve["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in test


def test_worker_runs_the_scheduler_without_http() -> None:
    worker = _services()["worker"]
    assert worker["command"] == ["worker"]
    assert "ports" not in worker
    assert worker["healthcheck"] == {"disable": True}, "the worker serves no /healthz"


def test_gpu_retrain_is_optional_and_reserves_a_gpu() -> None:
    retrain = _services()["retrain"]
    assert retrain["command"] == ["retrain"]
    assert retrain["profiles"] == ["gpu"], "retrain must only start with --profile gpu"
    assert retrain["build"]["args"]["TORCH_VARIANT"] == "cuda"
    devices = retrain["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] and d.get("count", 0) >= 1 for d in devices)
    assert retrain["restart"] == "no"
    others = [n for n, s in _services().items() if n != "retrain"]
    assert all("profiles" not in _services()[n] for n in others), "the core stack must start without profiles"


def test_migrate_runs_once() -> None:
    migrate = _services()["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert "migrate" not in migrate["depends_on"]


def test_compose_variables_are_documented_in_env_example() -> None:
    used = compose_variables(COMPOSE.read_text(encoding="utf-8"))
    documented = {e.name for e in env_entries()}
    assert used <= documented, f"compose.yaml uses variables .env.example does not list: {sorted(used - documented)}"
    unused = _compose_only() - used
    assert not unused, f".env.example lists unknown names, neither settings nor compose variables: {sorted(unused)}"


def test_compose_only_names_avoid_the_beacon_prefix() -> None:
    # env_file passes every .env line into the containers, and Beacon refuses unknown BEACON_* names.
    bad = sorted(n for n in _compose_only() if n.upper().startswith("BEACON_"))
    assert not bad, f"compose variables with the BEACON_ prefix would stop Beacon at start-up: {bad}"


def test_compose_interpolates_with_the_example_once_passwords_are_set() -> None:
    env = _example_env() | {"POSTGRES_PASSWORD": "s3cret"}
    text = COMPOSE.read_text(encoding="utf-8")
    resolved = interpolate(text, env)
    assert "${" not in interpolate(text.replace("$$", ""), env), "an interpolation was left unresolved"
    url = next(line for line in resolved.splitlines() if "DATABASE_URL:" in line).split("DATABASE_URL:")[1].strip()
    assert load_settings(environ={"DATABASE_URL": url}, env_file=None).database_url == url


# --- .env.example -------------------------------------------------------------------------------------
def test_env_example_lists_every_setting_exactly_once() -> None:
    names = [e.name for e in env_entries()]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"listed more than once: {duplicates}"
    missing = setting_names() - set(names)
    assert not missing, f"settings missing from deploy/.env.example: {sorted(missing)}"


def test_every_entry_is_documented_by_a_comment_above_it() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    entry_lines = {e.line for e in env_entries()}
    for entry in env_entries():
        n = entry.line - 2  # index of the line above
        documented = False
        while n >= 0 and lines[n].strip():
            if lines[n].startswith("#") and (n + 1) not in entry_lines:
                documented = True
                break
            n -= 1
        assert documented, f"line {entry.line}: {entry.name} has no explanatory comment above it"


def test_secrets_are_empty() -> None:
    for entry in env_entries():
        if entry.name in secret_names() - {"DATABASE_URL"} or entry.name.endswith("PASSWORD"):
            assert entry.value == "", f"{entry.name} must be empty in the example"
        if entry.name == "DATABASE_URL" and entry.value:
            assert "CHANGE_ME" in entry.value, "an example DATABASE_URL must carry a placeholder password"
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert not re.search(r"xox[abpr]-[0-9A-Za-z]", text), "a Slack token-like value is in .env.example"


def test_socket_mode_token_is_not_set_in_the_http_stack() -> None:
    entry = next(e for e in env_entries() if e.name == "SLACK_APP_TOKEN")
    assert not entry.active, "SLACK_APP_TOKEN set (even empty) selects Socket Mode; keep it commented"


def test_every_value_in_the_example_is_accepted_by_the_settings() -> None:
    env = {e.name: e.value for e in env_entries() if e.name in setting_names()}
    settings = load_settings(environ=env, env_file=None)
    assert settings.retrain_scheduler in {"internal", "external"}


def test_active_values_are_the_defaults_except_the_deploy_overrides() -> None:
    active = {k: v for k, v in _example_env().items() if k in setting_names() and k not in secret_names()}
    loaded = load_settings(environ=active, env_file=None)
    by_env = field_by_env()
    for name in active:
        field = by_env[name]
        info = Settings.model_fields[field]
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        value = getattr(loaded, field)
        if name in DEPLOY_OVERRIDES:
            assert value != default, f"{name} is listed as a deploy override but equals the default"
            continue
        assert value == default, f"{name}={active[name]!r} in .env.example, but the default is {default!r}"
    assert loaded.home == Path("/data")
