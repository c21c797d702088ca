"""DDP on CPU (Gloo), two processes, as torchrun would start them."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch.multiprocessing as mp

from models import distributed
from models.features import plan_batches, shard_batches


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    import torch

    torch.set_num_threads(1)
    from models.train import TrainConfig, train
    from tests.models.tiny import ListLog, synthetic_examples

    assert distributed.init("cpu")
    try:
        log = ListLog()
        config = TrainConfig(base_model=str(Path(folder) / "base"), epochs=2, batch_size=4, lr=3e-3, device="cpu",
                             precision="fp32", patience=0, max_length=32)
        results = list(train(config, synthetic_examples(30), {"dev": synthetic_examples(9, 1)},
                             out_dir=Path(folder) / "out", log=log, progress=False))
        summary = {"rank": distributed.rank(), "world": distributed.world_size(),
                   "steps": [r.steps for r in results], "loss": [r.train_loss for r in results],
                   "score": [r.score for r in results], "saved": log.names().count("train.saved")}
        (Path(folder) / f"rank{rank}.json").write_text(json.dumps(summary))
    finally:
        torch.distributed.destroy_process_group()


def test_two_ranks_train_in_lockstep_and_rank0_writes(tmp_path: Path) -> None:
    from tests.models.tiny import synthetic_examples, write_tiny_base, write_tokenizer

    write_tiny_base(tmp_path / "base")
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == 2 for r in ranks)
    assert ranks[0]["steps"] == ranks[1]["steps"]
    assert ranks[0]["loss"] == ranks[1]["loss"]  # all-reduced
    assert ranks[0]["score"] == ranks[1]["score"]  # dev predictions gathered from both ranks
    assert ranks[0]["saved"] >= 1 and ranks[1]["saved"] == 0  # rank 0 alone writes
    assert (tmp_path / "out" / "beacon.json").is_file()

    # every rank runs ceil(batches / world) steps per epoch
    from models.features import build_rows
    from models.labels import build_label_list

    tokenizer = write_tokenizer(tmp_path / "tok")
    labels = build_label_list(["LOC", "ORG", "PER"])
    rows = build_rows(synthetic_examples(30), tokenizer, label2id={x: i for i, x in enumerate(labels)},
                      sentiment2id={"negative": 0, "neutral": 1, "positive": 2}, max_length=32)
    batches = plan_batches(rows, 4, seed=13, epoch=0)
    assert ranks[0]["steps"][0] == len(shard_batches(batches, 0, 2)) == -(-len(batches) // 2)
