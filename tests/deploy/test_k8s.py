"""deploy/k8s, beyond the schemas: what each workload promises, and that the objects reference
each other correctly (ConfigMap, Secret, PVC, Service selector, ports, images, settings)."""

from __future__ import annotations

from typing import Any

from bot.settings import load_settings
from tests.deploy.helpers import K8S, k8s_manifests, k8s_object, load_yaml, secret_names, setting_names

CONFIG = "beacon-config"
SECRET = "beacon-secrets"
PVC = "beacon-models"
UID = 10001  # the Dockerfile's USER


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def _pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return obj["spec"]["template"]["metadata"]["labels"]


def _workloads() -> dict[str, dict[str, Any]]:
    return {f: o for f, o in k8s_manifests().items() if o["kind"] in {"Deployment", "CronJob"}}


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def _main(obj: dict[str, Any]) -> dict[str, Any]:
    containers = _pod_spec(obj)["containers"]
    assert len(containers) == 1
    return containers[0]


def _port(container: dict[str, Any], ref: int | str) -> int:
    if isinstance(ref, int):
        return ref
    named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == ref]
    assert named, f"no container port named {ref!r}"
    return int(named[0])


# --- serve ----------------------------------------------------------------------------------------
def test_serve_has_two_replicas_probes_resources_and_scrape_annotations() -> None:
    serve = k8s_object("Deployment", "beacon-serve")
    assert serve["spec"]["replicas"] == 2
    container = _main(serve)
    args = container["args"]
    assert args[0] == "serve"
    port = int(args[args.index("--port") + 1])
    assert _port(container, "http") == port
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz", f"{probe} must check /healthz"
        assert _port(container, get["port"]) == port
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), f"serve needs cpu and memory {kind}"
    annotations = serve["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_service_selects_serve_pods_on_the_http_port() -> None:
    service = k8s_object("Service", "beacon-serve")
    serve = k8s_object("Deployment", "beacon-serve")
    labels = _pod_labels(serve)
    assert service["spec"]["selector"].items() <= labels.items()
    assert serve["spec"]["selector"]["matchLabels"].items() <= labels.items()
    worker_labels = _pod_labels(k8s_object("Deployment", "beacon-worker"))
    assert not service["spec"]["selector"].items() <= worker_labels.items(), "the Service must not select workers"
    for port in service["spec"]["ports"]:
        assert _port(_main(serve), port["targetPort"]) == 3000


# --- worker ---------------------------------------------------------------------------------------
def test_worker_runs_one_scheduler_with_standby_documented() -> None:
    worker = k8s_object("Deployment", "beacon-worker")
    assert worker["spec"]["replicas"] == 1
    assert _main(worker)["args"] == ["worker"]
    assert {"cpu", "memory"} <= set(_main(worker)["resources"]["requests"])
    text = (K8S / "worker-deployment.yaml").read_text(encoding="utf-8")
    assert "standby" in text and "lock" in text, "document that a second replica waits on the DB lock"


# --- retrain --------------------------------------------------------------------------------------
def test_retrain_cronjob_uses_one_gpu_forbids_overlap_and_has_a_deadline() -> None:
    cron = k8s_object("CronJob", "beacon-retrain")
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert isinstance(spec["startingDeadlineSeconds"], int) and spec["startingDeadlineSeconds"] > 0
    assert len(spec["schedule"].split()) == 5
    container = _main(cron)
    assert container["args"][0] == "retrain"
    assert str(container["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    assert _pod_spec(cron)["restartPolicy"] in {"Never", "OnFailure"}


def test_retrain_cronjob_runs_the_cuda_image_and_everything_else_the_cpu_image() -> None:
    images = {i["name"]: i for i in load_yaml(K8S / "kustomization.yaml")["images"]}
    for file, obj in _workloads().items():
        for container in _containers(obj):
            assert container["image"] in images, f"{file}: image {container['image']!r} is not in kustomization images"
            tag = str(images[container["image"]].get("newTag", ""))
            is_gpu = obj["kind"] == "CronJob"
            assert ("cuda" in tag) == is_gpu, f"{file}: {container['name']} runs tag {tag!r}"


# --- configuration --------------------------------------------------------------------------------
def test_configmap_holds_known_non_secret_settings_with_external_retraining() -> None:
    data = k8s_object("ConfigMap", CONFIG)["data"]
    unknown = set(data) - setting_names()
    assert not unknown, f"ConfigMap keys that are not settings (beacon refuses BEACON_* unknowns): {unknown}"
    leaked = set(data) & secret_names()
    assert not leaked, f"secrets belong in the Secret, not the ConfigMap: {leaked}"
    assert data["BEACON_RETRAIN_SCHEDULER"] == "external"
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"
    settings = load_settings(environ=data, env_file=None)
    assert str(settings.home) == "/data"


def test_secret_template_has_the_slack_tokens_and_database_url_and_no_values() -> None:
    secret = k8s_object("Secret", SECRET)
    data = secret["stringData"]
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"} <= set(data)
    assert set(data) <= secret_names(), f"non-secret keys in the Secret: {set(data) - secret_names()}"
    assert "SLACK_APP_TOKEN" not in data, "SLACK_APP_TOKEN selects Socket Mode, which does not scale out"
    assert data["SLACK_BOT_TOKEN"] == "" and data["SLACK_SIGNING_SECRET"] == ""
    assert "CHANGE_ME" in data["DATABASE_URL"]
    assert load_settings(environ=data, env_file=None).database_url == data["DATABASE_URL"]


def test_every_pod_reads_the_configmap_and_secret_that_exist() -> None:
    k8s_object("ConfigMap", CONFIG)
    k8s_object("Secret", SECRET)
    for file, obj in _workloads().items():
        for container in _containers(obj):
            refs = {(kind, e[kind]["name"]) for e in container["envFrom"] for kind in e}
            assert refs == {("configMapRef", CONFIG), ("secretRef", SECRET)}, f"{file}/{container['name']}: {refs}"
            for env in container.get("env", []):
                assert env["name"] in setting_names(), f"{file}: unknown setting {env['name']}"


def test_model_pvc_is_read_write_many_and_mounted_at_beacon_home() -> None:
    pvc = k8s_object("PersistentVolumeClaim", PVC)
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    home = k8s_object("ConfigMap", CONFIG)["data"]["BEACON_HOME"]
    for file, obj in _workloads().items():
        volumes = {v["name"]: v for v in _pod_spec(obj)["volumes"]}
        claims = [v for v in volumes.values() if "persistentVolumeClaim" in v]
        assert [v["persistentVolumeClaim"]["claimName"] for v in claims] == [PVC], file
        for container in _containers(obj):
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get(home) == claims[0]["name"], f"{file}/{container['name']}: {home} is not the PVC"
            assert set(mounts.values()) <= set(volumes), f"{file}: mount of an undeclared volume"


def test_pods_run_as_the_image_user_without_privileges() -> None:
    for file, obj in _workloads().items():
        pod = _pod_spec(obj)["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == UID and pod["fsGroup"] == UID, file
        for container in _containers(obj):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, f"{file}/{container['name']}"
            if ctx.get("readOnlyRootFilesystem"):
                mounts = {m["mountPath"] for m in container["volumeMounts"]}
                assert "/tmp" in mounts, f"{file}/{container['name']}: read-only root needs a writable /tmp"


def test_every_object_carries_the_app_label() -> None:
    for file, obj in k8s_manifests().items():
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "beacon", file
