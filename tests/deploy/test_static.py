"""The offline linters on the deployment files, run for real: hadolint, kubernetes-validate, and the
compose-spec schema through check-jsonschema. Each also gets a known-bad input, to prove it can fail.

A missing tool is a failure, not a skip: CI installs them with the dev extra.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.helpers import COMPOSE, DOCKERFILE, K8S, k8s_manifests, load_yaml, run_tool

# Oldest Kubernetes minor the manifests promise to support (CronJob timeZone is GA since 1.27),
# and the newest schema kubernetes-validate ships.
K8S_VERSIONS = ["1.29.0", None]


def _report(proc: object) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"  # type: ignore[attr-defined]


# --- hadolint --------------------------------------------------------------------------------------
def test_hadolint_passes_on_the_dockerfile() -> None:
    proc = run_tool("hadolint", "--no-color", "--failure-threshold", "style", str(DOCKERFILE))
    assert proc.returncode == 0, "hadolint found problems in the Dockerfile:\n" + _report(proc)


def test_hadolint_fails_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /app && pip install x\n", encoding="utf-8")
    proc = run_tool("hadolint", "--no-color", "--failure-threshold", "style", str(bad))
    assert proc.returncode != 0, "hadolint accepted a Dockerfile with known violations:\n" + _report(proc)
    assert "DL3007" in proc.stdout  # the `latest` tag


# --- kubernetes-validate ---------------------------------------------------------------------------
def _kubernetes_validate(paths: list[Path], version: str | None) -> tuple[int, str]:
    args = ["kubernetes-validate", "--strict"]
    if version is not None:
        args += ["--kubernetes-version", version]
    proc = run_tool(*args, *map(str, paths))
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("version", K8S_VERSIONS, ids=lambda v: v or "latest")
def test_every_k8s_manifest_validates_strictly(version: str | None) -> None:
    paths = [K8S / name for name in k8s_manifests()]
    assert len(paths) >= 8, f"expected the full set of manifests, found {sorted(p.name for p in paths)}"
    code, output = _kubernetes_validate(paths, version)
    assert code == 0, output
    # A kind without a schema only warns (exit 0): require an explicit pass for every file.
    assert "WARN" not in output, output
    for path in paths:
        assert f"{path} passed" in output or f"{path.name} passed" in output, f"{path.name} not validated:\n{output}"


def test_kubernetes_validate_rejects_an_invalid_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n"
        "spec:\n  replicas: two\n  unknownField: 1\n",
        encoding="utf-8",
    )
    code, output = _kubernetes_validate([bad], None)
    assert code != 0, output


def test_kustomization_lists_exactly_the_manifests() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), f"duplicate resources: {resources}"
    missing = [name for name in resources if not (K8S / name).is_file()]
    assert not missing, f"kustomization.yaml lists files that do not exist: {missing}"
    # Templates (*.template.yaml: the Secret) are applied by hand, never by `kubectl apply -k`.
    expected = {name for name in k8s_manifests() if not name.endswith(".template.yaml")}
    listed = set(resources)
    assert listed == expected, f"not listed: {sorted(expected - listed)}; not a manifest: {sorted(listed - expected)}"


def test_kustomization_namespace_matches_the_namespace_object() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    namespaces = [o for o in k8s_manifests().values() if o["kind"] == "Namespace"]
    assert len(namespaces) == 1
    name = namespaces[0]["metadata"]["name"]
    assert kustomization["namespace"] == name
    for file, obj in k8s_manifests().items():
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == name, f"{file}: namespace is not {name}"


# --- compose schema -----------------------------------------------------------------------------------
def _compose_schema(path: Path) -> tuple[int, str]:
    proc = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(path))
    return proc.returncode, proc.stdout + proc.stderr


def test_compose_file_matches_the_compose_spec_schema() -> None:
    code, output = _compose_schema(COMPOSE)
    assert code == 0, output


def test_compose_schema_check_rejects_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        "services:\n  web:\n    image: x\n    ports: {a: 1}\n",
        encoding="utf-8",
    )
    code, output = _compose_schema(bad)
    assert code != 0, output


def test_compose_schema_check_sees_keys_merged_from_anchors(tmp_path: Path) -> None:
    # compose.yaml shares settings through a YAML anchor and `<<:`; an error inside the anchor must
    # still be caught, or the schema check would be blind to most of the file.
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        "x-common: &common\n  image: x\n  bogus_key: 1\nservices:\n  web:\n    <<: *common\n",
        encoding="utf-8",
    )
    code, output = _compose_schema(bad)
    assert code != 0, output


def test_a_missing_tool_fails_with_an_install_hint() -> None:
    from tests.deploy.helpers import tool

    with pytest.raises(AssertionError, match="dev extra"):
        tool("beacon-no-such-linter")
