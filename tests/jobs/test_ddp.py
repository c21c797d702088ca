"""Multi-process training on CPU (gloo): two DDP ranks end with identical weights and a falling loss;
and the retraining child runs under torchrun with rank 0 alone writing the artifact and result."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp
from sqlalchemy.orm import Session, sessionmaker

from tests.jobs.learn_fixtures import TINY_TRAIN, register_active, shared_tiny_world


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, world: int, port: int, folder: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from models import distributed
    from models.train import TrainConfig, _Run
    from tests.models.tiny import synthetic_examples, write_tiny_base

    assert distributed.init("cpu") and distributed.world_size() == world
    base = Path(folder) / "base"
    if rank == 0:
        write_tiny_base(base)
    distributed.barrier()
    config = TrainConfig(base_model=str(base), epochs=3, batch_size=4, lr=3e-3, device="cpu", seed=5, **TINY_TRAIN)
    run = _Run(config, synthetic_examples(48), {"dev": synthetic_examples(12, seed=1)},
               out_dir=Path(folder) / "out", log=_Quiet(), init_from=None, progress=False, manifest=[])
    losses = [result.train_loss for result in run.epochs()]
    digest = hashlib.sha256()
    for name, tensor in sorted(run.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    Path(folder, f"rank{rank}.json").write_text(json.dumps({"losses": losses, "weights": digest.hexdigest(),
                                                            "steps": run.steps_per_epoch}))
    distributed.barrier()
    torch.distributed.destroy_process_group()


class _Quiet:
    def info(self, event: str, **kw: Any) -> None:
        del event, kw


def test_two_ddp_ranks_end_identical_and_the_loss_falls(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["losses"] == ranks[1]["losses"]  # all-reduced
    assert ranks[0]["losses"][-1] < ranks[0]["losses"][0]
    assert ranks[0]["steps"] == ranks[1]["steps"] == 6  # 12 batches of 4 shared by two ranks per epoch
    assert (tmp_path / "out" / "beacon.json").is_file()  # written once, by rank 0


def test_retrain_child_under_torchrun(make_settings: Any, tmp_path: Path) -> None:
    """The real retraining cycle with the child launched by torchrun on two CPU processes."""
    from bot.context import Context
    from bot.storage import registry
    from bot.storage.db import make_engine, make_session_factory, upgrade
    from bot.storage.tables import TrainingRun
    from jobs.retrain import RetrainOptions, run_retrain
    from tests.jobs.test_retrain import OPTIONS

    world = shared_tiny_world()
    url = f"sqlite:///{tmp_path / 'ddp.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions: sessionmaker[Session] = make_session_factory(engine)
    settings = make_settings(DATABASE_URL=url, BEACON_BASE_TRAIN=world.train_spec, BEACON_BASE_DEV=world.dev_spec,
                             BEACON_BASE_MODEL=str(world.base_model), BEACON_DEVICE="cpu")
    with sessions() as session:
        champion = register_active(session, world.artifact)
        session.commit()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "-m", "jobs.train_child"]
    options = RetrainOptions(epochs=2, lr=OPTIONS.lr, batch_size=8, train_config=dict(TINY_TRAIN), launcher=launcher,
                             heartbeat_s=0.5)
    result = run_retrain(Context(settings=settings), force=True, options=options)
    assert result.status == "succeeded", result.error
    with sessions() as session:
        row = session.get(TrainingRun, result.run_id)
        assert row is not None and row.status == "succeeded"
        version = registry.get_version(session=session, version=result.version or "")
        assert version.parent_version == champion
    log = (settings.home / "runs" / f"run-{result.run_id}" / "child.log").read_text()
    assert log.count('"event": "train.start"') == 2  # both ranks trained
    assert log.count('"event": "child.done"') == 1  # rank 0 alone scored and wrote the result
    assert '"world_size": 2' in log
    engine.dispose()
