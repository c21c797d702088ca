"""A Rich progress bar for training epochs (a no-op when disabled: non-TTY jobs, ranks > 0)."""

from __future__ import annotations

from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class EpochBar:
    """``with EpochBar(total, "epoch 1/3") as bar: bar.advance(); bar.show_loss(0.4)``."""

    def __init__(self, total: int, description: str, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.description = description
        self.progress: Progress | None = None
        self.total = total
        self.task = TaskID(0)

    def __enter__(self) -> EpochBar:
        if self.enabled:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[loss]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=self.total, loss="")
        return self

    def advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)

    def show_loss(self, loss: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, loss=f"loss {loss:.4f}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
