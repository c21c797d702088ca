"""Holds the serving Analyzer and swaps in a newly promoted model without restart.

A new model is loaded next to the old one and swapped in atomically (one reference
assignment under a lock); requests already in flight keep the object they started with.
A model that fails to load is never swapped in: the old one keeps serving.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot import metrics
from bot.errors import ModelError
from bot.log import get_logger
from bot.storage import registry
from models.analyze import Analyzer

log = get_logger("beacon.models")


class ModelHolder:
    def __init__(self, sessions: sessionmaker[Session], *, device: str = "auto") -> None:
        self._sessions = sessions
        self._device = device
        self._lock = threading.Lock()
        self._analyzer: Analyzer | None = None
        self._path: str | None = None

    @property
    def version(self) -> str | None:
        current = self._analyzer
        return current.version if current is not None else None

    def current(self) -> Analyzer:
        """The serving Analyzer (the same object for the whole of one request)."""
        current = self._analyzer
        if current is None:
            self.reload_if_changed()
            current = self._analyzer
        if current is None:
            raise ModelError("no active model: run `beacon train --promote` or start `beacon run` to train one")
        return current

    def load_path(self, path: str | Path) -> Analyzer:
        """Load ``path`` and swap it in; raises ModelError (old model kept) if it fails."""
        analyzer = Analyzer.load(Path(path), device=self._device)
        with self._lock:
            self._analyzer = analyzer
            self._path = str(path)
        metrics.set_model_version(analyzer.version)
        log.info("model.swapped", model_version=analyzer.version, path=str(path))
        return analyzer

    def reload_if_changed(self) -> bool:
        """Swap in the registry's active model if it changed. True when a swap happened."""
        with self._sessions() as session:
            active = registry.active_version(session=session)
            target = (active.version, active.path) if active is not None else None
        if target is None or (self._analyzer is not None and self._analyzer.version == target[0]):
            return False
        try:
            self.load_path(target[1])
        except (ModelError, OSError) as exc:
            log.error("model.reload_failed", model_version=target[0], path=target[1], error=str(exc), exc_info=True)
            return False
        return True

    def start_watcher(self, interval: float) -> threading.Thread:
        """Poll the registry every ``interval`` seconds in a daemon thread (hot reload)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                self._watch_once()

        thread = threading.Thread(target=loop, name="model-reloader", daemon=True)
        thread.start()
        self._stop = stop
        self._thread = thread
        return thread

    def _watch_once(self) -> None:
        try:
            self.reload_if_changed()
        except Exception:  # the reload thread must survive a DB outage; logged with traceback
            log.error("model.watch_failed", exc_info=True)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the reload thread and wait for it, so no reload is half-done at exit."""
        stop: Any = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
        thread: threading.Thread | None = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
