"""CUDA-graph replays for the latency path: one unpadded window (a single chat message).

A small encoder at batch size one is bound by kernel launches and Python, not arithmetic;
replaying a captured graph runs the whole forward pass in one launch. One graph per sequence
length (up to ``max_length``), captured on first use (or by :meth:`GraphRunner.warmup`), all
sharing one memory pool. Replays are serialised by a lock (the graphs share static buffers).
If capture fails (an unsupported model or PyTorch), the runner switches itself off, records
why in ``error``, and the caller runs the model eagerly.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from models.network import BeaconModel, BeaconOutput


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    input_ids: torch.Tensor
    casing_ids: torch.Tensor
    ner: torch.Tensor
    sentiment: torch.Tensor


class GraphRunner:
    def __init__(self, model: BeaconModel, device: torch.device, *, bf16: bool, max_length: int) -> None:
        self.model = model
        self.device = device
        self.bf16 = bf16
        self.max_length = max_length
        self.graphs: dict[int, _Graph] = {}
        self.lock = threading.Lock()
        self.pool: Any = None
        self.error: str | None = None

    @property
    def enabled(self) -> bool:
        return self.error is None and self.device.type == "cuda"

    def run(self, input_ids: torch.Tensor, casing_ids: torch.Tensor) -> BeaconOutput | None:
        """Outputs for one unpadded window (shape (1, L)), or None when graphs are unavailable."""
        length = int(input_ids.shape[1])
        if not self.enabled or input_ids.shape[0] != 1 or length > self.max_length:
            return None
        with self.lock:
            graph = self.graphs.get(length) or self._capture(length)
            if graph is None:
                return None
            graph.input_ids.copy_(input_ids)
            graph.casing_ids.copy_(casing_ids)
            graph.graph.replay()
            return BeaconOutput(graph.ner.clone(), graph.sentiment.clone())

    def warmup(self, lengths: Iterable[int] | None = None) -> int:
        """Capture graphs ahead of traffic (default: every length up to max_length); returns how many."""
        for length in lengths or range(2, self.max_length + 1):
            if not self.enabled:
                break
            with self.lock:
                if length not in self.graphs:
                    self._capture(length)
        return len(self.graphs)

    def _forward(self, input_ids: torch.Tensor, casing_ids: torch.Tensor) -> BeaconOutput:
        # autocast's weight-cast cache must be off while capturing (the casts become graph kernels)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16, cache_enabled=False):
            out: BeaconOutput = self.model(input_ids, None, casing_ids)
        return out

    def _capture(self, length: int) -> _Graph | None:
        try:
            with torch.inference_mode():
                input_ids = torch.full((1, length), 0, dtype=torch.long, device=self.device)
                casing_ids = torch.zeros_like(input_ids)
                side = torch.cuda.Stream(self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):
                    for _ in range(2):
                        self._forward(input_ids, casing_ids)
                torch.cuda.current_stream(self.device).wait_stream(side)
                if self.pool is None:
                    self.pool = torch.cuda.graph_pool_handle()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=self.pool):
                    out = self._forward(input_ids, casing_ids)
            captured = _Graph(graph, input_ids, casing_ids, out.ner_logits, out.sentiment_logits)
        except (RuntimeError, AssertionError) as exc:
            self.error = f"CUDA graph capture failed ({exc}); running eagerly"
            warnings.warn(self.error, RuntimeWarning, stacklevel=2)
            return None
        self.graphs[length] = captured
        return captured
