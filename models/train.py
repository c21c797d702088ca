"""Fine-tuning: one network, two tasks, a generator that yields one result per epoch.

``train`` follows spaCy's ``train_while_improving``: the caller drives it and sees every
epoch (CLI progress, the retrain job's logs, torchrun ranks alike). The best network so far
(mean of the dev sets' NER F1 and sentiment accuracy) is written to ``out_dir`` as a complete
artifact, calibration temperatures included, each time it improves. Multitask batching is
described in :mod:`models.features`; the loss in :func:`models.features.batch_loss`.

Under ``torchrun`` (after :func:`models.distributed.init`), the network is wrapped in DDP,
every rank takes its share of the same batch plan (all ranks run the same number of steps),
losses and stop decisions are all-reduced, dev predictions gathered, and rank 0 alone writes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.nn.parallel import DistributedDataParallel

from models import distributed as dist
from models.artifact import ArtifactMeta, new_model_version, save_artifact
from models.data import Example
from models.device import autocast, resolve_device, use_bf16
from models.errors import TrainingError
from models.evaluate import fit_temperature
from models.features import Row, batch_loss, build_rows, collate, plan_batches, shard_batches
from models.network import BeaconModel
from models.predict import Predictor
from models.progress import EpochBar
from models.scoring import ModelView, calibration_data, collect, dev_score, report_for
from models.trainsetup import Start, linear_schedule, make_optimizer, seed_everything, starting_point

SYNC_EVERY = 16  # steps between NaN / time checks that need a device sync (or an all-reduce)


class Logger(Protocol):
    def info(self, event: str, **kw: Any) -> Any: ...


@dataclass
class TrainConfig:
    """Hyper-parameters and run settings; stored in the artifact's ``train_config``."""

    base_model: str = "default"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 13
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | bf16 | fp32
    max_minutes: float | None = None  # time budget from the call of train() (loading included)
    max_steps: int | None = None  # stop after this many optimiser steps (benchmarks, smoke runs)
    max_length: int = 128
    casing: bool = True
    pooling: str = "mean"  # mean | cls
    patience: int = 2  # stop after this many epochs in a row without dev improvement (0: never)
    ner_weight: float = 1.0
    sentiment_weight: float = 1.0
    eval_batch_size: int = 64

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class EpochResult:
    """One epoch (or the part of one before a stop)."""

    epoch: int
    steps: int  # optimiser steps in this epoch
    train_loss: float
    dev: dict[str, dict[str, Any]]
    score: float | None  # dev score (None when nothing was evaluated)
    seconds: float  # training time of the epoch, evaluation excluded
    samples_per_s: float  # rows per second over all ranks
    is_best: bool
    stopped: str | None = None  # "time", "steps" or "patience" when training stops here
    artifact: Path | None = None  # set when this epoch wrote the artifact
    temperatures: dict[str, float] = field(default_factory=dict)


def train(
    config: TrainConfig,
    train_data: Sequence[Example],
    dev_data: Mapping[str, Sequence[Example]],
    *,
    out_dir: Path,
    log: Logger,
    init_from: Path | None = None,
    progress: bool = True,
    manifest: Sequence[dict[str, Any]] = (),
) -> Iterator[EpochResult]:
    """Train; yield an :class:`EpochResult` per epoch; keep the best artifact in ``out_dir``."""
    run = _Run(config, train_data, dev_data, out_dir=Path(out_dir), log=log, init_from=init_from,
               progress=progress, manifest=list(manifest))
    yield from run.epochs()


def train_to_artifact(
    config: TrainConfig,
    train_data: Sequence[Example],
    dev_data: Mapping[str, Sequence[Example]],
    *,
    out_dir: Path,
    log: Logger,
    init_from: Path | None = None,
    progress: bool = True,
    manifest: Sequence[dict[str, Any]] = (),
) -> Path:
    """Run :func:`train` to the end; the artifact folder (``out_dir``)."""
    written: Path | None = None
    for result in train(config, train_data, dev_data, out_dir=out_dir, log=log, init_from=init_from,
                        progress=progress, manifest=manifest):
        written = result.artifact or written
    if written is None:
        raise TrainingError(f"training produced no artifact in {out_dir}")
    return written


class _Run:
    def __init__(self, config: TrainConfig, train_data: Sequence[Example],
                 dev_data: Mapping[str, Sequence[Example]], *, out_dir: Path, log: Logger,
                 init_from: Path | None, progress: bool, manifest: list[dict[str, Any]]) -> None:
        self.t0 = time.monotonic()
        if not train_data:
            raise TrainingError("no training data: give at least one example")
        if config.epochs < 1 or config.batch_size < 1:
            raise TrainingError(f"epochs ({config.epochs}) and batch_size ({config.batch_size}) must be >= 1")
        self.config, self.log, self.out_dir, self.manifest = config, log, out_dir, manifest
        self.dev = {name: list(exs) for name, exs in dev_data.items() if exs}
        seed_everything(config.seed)
        self.device = dist.local_device(resolve_device(config.device))
        self.bf16 = use_bf16(self.device, config.precision)
        self.start: Start = starting_point(train_data, base_model=config.base_model, casing=config.casing,
                                           pooling=config.pooling,
                                           init_from=str(init_from) if init_from else None)
        self.model: BeaconModel = self.start.model.to(self.device)
        self.label2id = {label: i for i, label in enumerate(self.start.ner_labels)}
        self.rows: list[Row] = build_rows(
            train_data, self.start.tokenizer, label2id=self.label2id,
            sentiment2id={s: i for i, s in enumerate(self.start.sentiment_labels)},
            max_length=config.max_length)
        if not self.rows:
            raise TrainingError(f"none of the {len(train_data)} training examples carries a usable label")
        self.steps_per_epoch = len(shard_batches(self._plan(0), dist.rank(), dist.world_size()))
        total = self.steps_per_epoch * config.epochs
        if config.max_steps is not None:
            total = min(total, config.max_steps)
        self.optimizer = make_optimizer(self.model, lr=config.lr, weight_decay=config.weight_decay,
                                        device=self.device)
        self.scheduler = linear_schedule(self.optimizer, total_steps=total, warmup_ratio=config.warmup_ratio)
        self.net: torch.nn.Module = self.model
        if dist.is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.progress = progress and dist.is_main()
        self.version = new_model_version()
        self.global_step = 0
        self.best: float | None = None
        self.evaluated = False
        log.info("train.start", examples=len(train_data), rows=len(self.rows), labels=len(self.label2id),
                 steps_per_epoch=self.steps_per_epoch, device=str(self.device), bf16=self.bf16,
                 world_size=dist.world_size(), version=self.version,
                 parent=self.start.parent.model_version if self.start.parent else None)

    def _plan(self, epoch: int) -> list[list[int]]:
        return plan_batches(self.rows, self.config.batch_size, seed=self.config.seed, epoch=epoch)

    def _out_of_time(self) -> bool:
        budget = self.config.max_minutes
        return budget is not None and time.monotonic() - self.t0 > budget * 60.0

    def epochs(self) -> Iterator[EpochResult]:
        stale = 0
        for epoch in range(1, self.config.epochs + 1):
            result = self._epoch(epoch)
            # out of time: keep the best so far; evaluate only when nothing was evaluated yet
            if result.stopped is None or not self.evaluated or (result.stopped == "steps" and result.steps):
                self._evaluate(result)
            stale = 0 if result.is_best else stale + 1
            patience = self.config.patience
            if result.stopped is None and epoch < self.config.epochs and 0 < patience <= stale:
                result.stopped = "patience"
            self.log.info("train.epoch", epoch=epoch, steps=result.steps, loss=round(result.train_loss, 5),
                          score=result.score, best=result.is_best, seconds=round(result.seconds, 1),
                          samples_per_s=round(result.samples_per_s, 1), stopped=result.stopped)
            yield result
            if result.stopped is not None:
                return

    def _epoch(self, epoch: int) -> EpochResult:
        config = self.config
        batches = shard_batches(self._plan(epoch - 1), dist.rank(), dist.world_size())
        self.net.train()
        loss_sum = torch.zeros((), device=self.device)
        steps = rows = 0
        stopped: str | None = None
        started = time.monotonic()
        with EpochBar(len(batches), f"epoch {epoch}/{config.epochs}", enabled=self.progress) as bar:
            for indices in batches:
                if config.max_steps is not None and self.global_step >= config.max_steps:
                    stopped = "steps"
                    break
                loss = self._step([self.rows[i] for i in indices])
                loss_sum += loss
                steps += 1
                rows += len(indices)
                self.global_step += 1
                bar.advance()
                if steps % SYNC_EVERY == 0 or steps == len(batches):
                    self._check_finite(loss_sum, epoch, steps)
                    bar.show_loss(float(loss_sum) / steps)
                if self._stop_for_time(steps):
                    stopped = "time"
                    break
        self._check_finite(loss_sum, epoch, steps)
        seconds = time.monotonic() - started
        mean_loss = dist.all_reduce_mean(float(loss_sum) / max(steps, 1), self.device)
        if stopped is None and config.max_steps is not None and self.global_step >= config.max_steps:
            stopped = "steps"
        speed = rows * dist.world_size() / seconds if seconds > 0 else 0.0
        return EpochResult(epoch, steps, mean_loss, {}, None, seconds, speed, False, stopped)

    def _step(self, rows: list[Row]) -> torch.Tensor:
        batch = collate(rows, int(self.start.tokenizer.pad_token_id or 0), self.device)
        with autocast(self.device, self.bf16):
            out = self.net(batch.input_ids, batch.attention_mask, batch.casing_ids)
        loss, _, _ = batch_loss(out, batch, ner_weight=self.config.ner_weight,
                                sentiment_weight=self.config.sentiment_weight)
        loss.backward()
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def _stop_for_time(self, steps: int) -> bool:
        if not dist.is_distributed():
            return self._out_of_time()
        if steps % SYNC_EVERY:
            return False
        return dist.any_rank(self._out_of_time(), self.device)

    def _check_finite(self, loss_sum: torch.Tensor, epoch: int, steps: int) -> None:
        bad = not bool(torch.isfinite(loss_sum))
        if dist.any_rank(bad, self.device):
            raise TrainingError(
                f"the loss became NaN/inf in epoch {epoch} by step {steps} (learning rate {self.config.lr}); "
                "lower the learning rate or check the data weights"
            )

    # ------------------------------------------------------------ evaluation and saving

    def _view(self) -> ModelView:
        predictor = Predictor(self.model, self.start.tokenizer, max_length=self.config.max_length,
                              device=self.device, bf16=self.bf16)
        return ModelView(predictor, self.start.ner_labels, self.start.sentiment_labels)

    def _evaluate(self, result: EpochResult) -> None:
        self.evaluated = True
        view = self._view()
        reports: dict[str, dict[str, Any]] = {}
        calib: list[tuple[torch.Tensor, ...]] = []
        for name, examples in self.dev.items():
            docs = self._gather_docs(view, examples)
            reports[name] = report_for(examples, docs, labels=view.labels,
                                       sentiment_labels=view.sentiment_labels, temperatures=view.temperatures)
            calib.append(calibration_data(examples, docs, labels=view.labels,
                                          sentiment_labels=view.sentiment_labels))
        score = dev_score(reports)
        if score is None:  # no dev data: the lowest training loss wins
            score = -result.train_loss if math.isfinite(result.train_loss) else None
        result.dev, result.score = reports, score
        result.is_best = score is not None and (self.best is None or score > self.best)
        if not result.is_best:
            return
        self.best = score
        result.temperatures = self._temperatures(calib)
        if dist.is_main():
            result.artifact = self._save(result)
        dist.barrier()
        if result.artifact is None:
            result.artifact = self.out_dir

    def _gather_docs(self, view: ModelView, examples: list[Example]) -> list[Any]:
        rank, world = dist.rank(), dist.world_size()
        mine = collect(view.predictor, examples[rank::world], self.config.eval_batch_size, keep_logits=True)
        if world == 1:
            return mine
        parts = dist.gather_objects(mine)
        docs: list[Any] = [None] * len(examples)
        for r, part in enumerate(parts):
            docs[r::world] = part
        return docs

    def _temperatures(self, calib: list[tuple[torch.Tensor, ...]]) -> dict[str, float]:
        if not calib:
            return {"ner": 1.0, "sentiment": 1.0}
        word_logits = torch.cat([c[0] for c in calib])
        word_gold = torch.cat([c[1] for c in calib])
        sent_logits = torch.cat([c[2] for c in calib])
        sent_gold = torch.cat([c[3] for c in calib])
        return {"ner": fit_temperature(word_logits, word_gold),
                "sentiment": fit_temperature(sent_logits, sent_gold)}

    def _save(self, result: EpochResult) -> Path:
        parent = self.start.parent
        meta = ArtifactMeta(
            model_version=self.version,
            ner_labels=list(self.start.ner_labels),
            sentiment_labels=list(self.start.sentiment_labels),
            encoder_config={},
            max_length=self.config.max_length,
            temperatures=result.temperatures,
            metrics={"dev": result.dev, "score": result.score, "epoch": result.epoch,
                     "train_loss": result.train_loss},
            data_manifest=list(self.manifest),
            train_config=self.config.to_dict(),
            parent_version=parent.model_version if parent else None,
        )
        path = save_artifact(self.out_dir, self.model, self.start.tokenizer, meta)
        self.log.info("train.saved", path=str(path), version=self.version, epoch=result.epoch, score=result.score)
        return path
