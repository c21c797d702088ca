"""A model artifact: one self-contained folder that serves with no network and no base folder.

Layout::

    model.safetensors      encoder + casing embedding + both heads
    tokenizer.json, tokenizer_config.json (whatever the tokenizer saves)
    beacon.json            labels, encoder config, calibration, metrics, manifest, lineage

``beacon.json`` is written last (each file through a temporary name and an atomic rename),
so a folder with a ``beacon.json`` is complete. Serving reads the labels from it alone.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from models.device import resolve_device
from models.errors import ModelError
from models.network import BeaconModel, encoder_config_from_dict

FORMAT_VERSION = 1
META_FILE = "beacon.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_CONFIG = "tokenizer_config.json"
TOKENIZER_DATA = ("tokenizer.json", "vocab.txt")


def new_model_version(now: datetime | None = None) -> str:
    """``YYYYMMDD-HHMMSS-<6 hex>`` in UTC: sortable by time, unique across machines."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class ArtifactMeta:
    """Everything in ``beacon.json``."""

    model_version: str
    ner_labels: list[str]
    sentiment_labels: list[str]
    encoder_config: dict[str, Any]
    casing: bool = True
    pooling: str = "mean"
    max_length: int = 128
    temperatures: dict[str, float] = field(default_factory=lambda: {"ner": 1.0, "sentiment": 1.0})
    metrics: dict[str, Any] = field(default_factory=dict)
    data_manifest: list[dict[str, Any]] = field(default_factory=list)
    train_config: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    parent_version: str | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["id2label"] = {str(i): label for i, label in enumerate(self.ner_labels)}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, where: str = META_FILE) -> ArtifactMeta:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(f"{where}: format_version {version!r} is not supported (expected {FORMAT_VERSION})")
        try:
            return cls(
                model_version=str(data["model_version"]),
                ner_labels=[str(x) for x in data["ner_labels"]],
                sentiment_labels=[str(x) for x in data["sentiment_labels"]],
                encoder_config=dict(data["encoder_config"]),
                casing=bool(data.get("casing", True)),
                pooling=str(data.get("pooling", "mean")),
                max_length=int(data.get("max_length", 128)),
                temperatures={k: float(v) for k, v in data.get("temperatures", {}).items()},
                metrics=dict(data.get("metrics", {})),
                data_manifest=list(data.get("data_manifest", [])),
                train_config=dict(data.get("train_config", {})),
                created_at=str(data.get("created_at", "")),
                parent_version=data.get("parent_version"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{where}: missing or malformed field ({exc})") from exc

    def temperature(self, head: str) -> float:
        return float(self.temperatures.get(head, 1.0))


def _replace_atomically(final: Path, write: Any) -> None:
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_state_dict(model: BeaconModel, path: Path) -> None:
    """The network's weights as safetensors (contiguous CPU copies; no shared storage)."""
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in model.state_dict().items()}
    _replace_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))


def write_meta(path: Path, meta: ArtifactMeta) -> None:
    """(Re)write ``beacon.json`` alone, e.g. after calibration."""
    text = json.dumps(meta.to_json(), indent=2, sort_keys=True, default=str)
    _replace_atomically(path / META_FILE, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def save_artifact(path: Path, model: BeaconModel, tokenizer: PreTrainedTokenizerBase, meta: ArtifactMeta) -> Path:
    """Write a complete artifact folder (created if needed); returns ``path``."""
    if len(meta.ner_labels) != model.num_ner_labels:
        raise ModelError(f"{len(meta.ner_labels)} entity labels for a head of {model.num_ner_labels}")
    if len(meta.sentiment_labels) != model.num_sentiments:
        raise ModelError(f"{len(meta.sentiment_labels)} sentiment labels for a head of {model.num_sentiments}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta_file = path / META_FILE
    if meta_file.exists():
        meta_file.unlink()  # the folder is incomplete until the new beacon.json lands
    save_state_dict(model, path / WEIGHTS_FILE)
    tokenizer.save_pretrained(str(path))
    settings = model.settings()
    meta.encoder_config = settings["encoder_config"]
    meta.casing = settings["casing"]
    meta.pooling = settings["pooling"]
    write_meta(path, meta)
    return path


def read_meta(path: Path) -> ArtifactMeta:
    """``beacon.json`` of an artifact folder, checked."""
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"model artifact {path} does not exist or is not a folder")
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise ModelError(f"model artifact {path} is incomplete: {META_FILE} is missing")
    try:
        data = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{meta_file}: unreadable ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{meta_file}: expected a JSON object")
    return ArtifactMeta.from_json(data, where=str(meta_file))


def check_files(path: Path) -> None:
    """:class:`ModelError` naming the first missing file of an artifact."""
    path = Path(path)
    for name in (META_FILE, WEIGHTS_FILE, TOKENIZER_CONFIG):
        if not (path / name).is_file():
            raise ModelError(f"model artifact {path} is incomplete: {name} is missing")
    if not any((path / name).is_file() for name in TOKENIZER_DATA):
        raise ModelError(f"model artifact {path} is incomplete: {TOKENIZER_DATA[0]} is missing")


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer of {path}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"the tokenizer of {path} is not a fast tokenizer (word offsets need one)")
    return tokenizer


def build_model(meta: ArtifactMeta) -> BeaconModel:
    """An untrained network shaped as the artifact describes."""
    config = encoder_config_from_dict(meta.encoder_config)
    return BeaconModel(
        config,
        len(meta.ner_labels),
        num_sentiments=len(meta.sentiment_labels),
        casing=meta.casing,
        pooling=meta.pooling,
    )


def load_weights(model: BeaconModel, weights: Path) -> None:
    try:
        state = load_file(str(weights))
    except (OSError, SafetensorError) as exc:
        raise ModelError(f"{weights}: unreadable weights ({exc})") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{weights}: weights do not fit the network in {META_FILE}: {exc}") from exc


def load_artifact(
    path: Path | str, device: torch.device | str = "auto"
) -> tuple[BeaconModel, PreTrainedTokenizerBase, ArtifactMeta]:
    """Load an artifact folder; the model is in eval mode on ``device``."""
    path = Path(path)
    meta = read_meta(path)
    check_files(path)
    model = build_model(meta)
    load_weights(model, path / WEIGHTS_FILE)
    target = device if isinstance(device, torch.device) else resolve_device(device)
    model.to(target)
    model.eval()
    return model, load_tokenizer(path), meta
