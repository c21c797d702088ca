"""First run: when no model is active, train the default model from the seed data.

Several processes may start at once (serve replicas, a worker): one takes a lease in the
database and trains; the others wait for the active model to appear.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from pathlib import Path

import models
from bot.context import Context
from bot.errors import ModelError
from bot.log import get_logger
from bot.storage import crud, registry
from bot.storage.db import session_scope
from bot.training import Sources, train_and_register
from models.data import holdout_split, manifest_entry, read_source
from models.train import TrainConfig

log = get_logger("beacon.bootstrap")
LOCK = "bootstrap-default-model"
SEED_DIR = Path(models.__file__).parent / "seed"
SEED_DEV_FRACTION = 0.15  # the default model's dev share of the seed data (jobs.retrain_data uses it too)
SEED_SALT = "beacon-seed"


def seed_specs() -> list[str]:
    files = sorted(SEED_DIR.glob("*.jsonl"))
    if not files:
        raise ModelError(f"no seed data in {SEED_DIR}; reinstall beacon")
    return [f"jsonl:{f}" for f in files]


def seed_config(base_model: str, device: str) -> TrainConfig:
    """Small and quick: a few minutes on 2 CPU cores with the packaged MiniLM."""
    return TrainConfig(
        base_model=base_model, epochs=6, batch_size=16, lr=1e-4, warmup_ratio=0.1, device=device,
        max_minutes=12.0, patience=3, max_length=96,
    )


def train_default(c: Context, *, progress: bool = True) -> str:
    """Train the seed model, register it and make it active. Returns its version."""
    examples, manifest = [], []
    for spec in seed_specs():
        part = read_source(spec)
        examples.extend(part)
        manifest.append(manifest_entry(spec, part))
    train_part, dev_part = holdout_split(examples, SEED_DEV_FRACTION, salt=SEED_SALT)
    log.info("bootstrap.training", train=len(train_part), dev=len(dev_part), base_model=c.settings.base_model)
    version, _, metrics = train_and_register(
        c, train_data=Sources(train_part, manifest), dev_data={"seed:dev": dev_part},
        config=seed_config(c.settings.base_model, c.settings.device), promote=True, actor="bootstrap",
        notes="default model trained from models/seed on first run", progress=progress,
    )
    log.info("bootstrap.done", model_version=version, metrics=metrics)
    return version


def ensure_active_model(c: Context, *, progress: bool = True, wait_minutes: float = 60.0) -> str:
    """The active model's version, training the default one first when none is registered."""
    c.migrate()
    holder = f"{socket.gethostname()}:{os.getpid()}"
    deadline = time.monotonic() + wait_minutes * 60
    announced = False
    while True:
        with session_scope(c.sessions) as session:
            active = registry.active_version(session=session)
            if active is not None:
                return active.version
            mine = crud.try_acquire_lock(session=session, name=LOCK, holder=holder, ttl=timedelta(minutes=30))
        if mine:
            try:
                print("No model is registered yet: training the default model from the seed data "
                      "(a few minutes on 2 CPU cores)...", flush=True)
                return train_default(c, progress=progress)
            finally:
                with session_scope(c.sessions) as session:
                    crud.release_lock(session=session, name=LOCK, holder=holder)
        if not announced:
            log.info("bootstrap.waiting", reason="another process is training the default model")
            announced = True
        if time.monotonic() > deadline:
            raise ModelError("timed out waiting for another process to train the default model")
        time.sleep(5)
