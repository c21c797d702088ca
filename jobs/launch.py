"""The retraining child process: its command (``torchrun`` on several GPUs), environment and supervision."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.errors import TrainingError
from bot.log import get_logger
from bot.settings import Settings
from jobs.retrain_data import Prepared, RetrainOptions

log = get_logger("beacon.retrain")


# ------------------------------------------------------------------ the child process


def planned_device(settings: Settings) -> tuple[str, int]:
    """("cuda"|"cpu", number of processes)."""
    import torch

    if settings.device != "cpu" and torch.cuda.is_available():
        return "cuda", max(1, torch.cuda.device_count()) if settings.device == "auto" else 1
    return "cpu", 1


def child_command(settings: Settings, options: RetrainOptions) -> list[str]:
    if options.launcher is not None:
        return list(options.launcher)
    kind, procs = planned_device(settings)
    if kind == "cuda" and procs > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
                "-m", "jobs.train_child"]
    return [sys.executable, "-m", "jobs.train_child"]


def _child_env() -> dict[str, str]:
    import jobs

    root = str(Path(jobs.__file__).resolve().parent.parent)
    env = dict(os.environ)  # the child inherits the process environment (HF caches, CUDA settings)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:].strip()
    except OSError:
        return ""


def run_child(settings: Settings, prepared: Prepared, *, options: RetrainOptions,
              renew: Callable[[], None]) -> dict[str, Any]:
    """Run the child to completion, calling ``renew`` (the lease) while it works; its result, or TrainingError."""
    spec_path = prepared.run_dir / "spec.json"
    log_path = prepared.run_dir / "child.log"
    timeout = options.timeout_s or settings.retrain_max_minutes * 60 * 3 + 600
    command = [*child_command(settings, options), str(spec_path)]
    log.info("retrain.child_start", command=command, log=str(log_path))
    with log_path.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_child_env(),
                                start_new_session=True, cwd=str(prepared.run_dir))
        started = time.monotonic()
        while True:
            try:
                code = proc.wait(timeout=options.heartbeat_s)
                break
            except subprocess.TimeoutExpired:
                renew()
                if time.monotonic() - started > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    raise TrainingError(f"training child exceeded {timeout / 60:.0f} minutes and was killed") from None
    result_path = Path(prepared.spec["result"])
    result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else None
    if code == 0 and result and result.get("ok"):
        return dict(result)
    if result and result.get("error"):
        raise TrainingError(str(result["error"]))
    how = f"was killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
    raise TrainingError(f"training child {how}; last output:\n{_tail(log_path)}")
