"""Why a sentiment: integrated gradients over the input embeddings, summed per word.

The explained quantity is ``log p(predicted class)`` of the calibrated sentiment (windows
averaged as in serving). The baseline replaces every content sub-token by ``[PAD]`` with the
neutral casing class, keeping ``[CLS]``/``[SEP]`` and positions. Attributions are summed over
the hidden dimension and over a word's sub-tokens: a positive weight pushed the decision
towards the predicted label, a negative one away from it. Their sum approximates
``f(text) - f(baseline)`` (completeness), reported as ``delta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from models.encoding import window_tensors
from models.network import CASE_SPECIAL
from models.predict import Predictor
from models.words import split_words


@dataclass
class WordWeight:
    word: str
    start: int
    end: int
    weight: float


@dataclass
class Explanation:
    text: str
    label: str
    score: float
    words: list[WordWeight] = field(default_factory=list)  # top-k by |weight|, largest first
    delta: float = 0.0  # f(text) - f(baseline); the weights of ALL words sum to about this
    method: str = "integrated_gradients"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _log_prob(logits: torch.Tensor, shares: torch.Tensor, target: int, temperature: float) -> torch.Tensor:
    """log p(target) of the share-weighted mean of per-window logits; ``logits`` (copies, windows, C)."""
    mean = (logits * shares[None, :, None]).sum(dim=1) / shares.sum()
    return torch.log_softmax(mean / temperature, dim=-1)[:, target]


def explain_sentiment(
    predictor: Predictor,
    text: str,
    *,
    labels: Sequence[str],
    temperature: float = 1.0,
    top_k: int = 10,
    steps: int = 24,
) -> Explanation:
    """Integrated-gradients explanation of the sentiment of ``text`` (fp32, no autocast)."""
    spans = split_words(text)
    words = [text[s:e] for s, e in spans]
    model = predictor.model
    windows = predictor.windows([words])
    ids, mask, casing = window_tensors(windows, predictor.pad_id, predictor.device)
    content = torch.zeros_like(ids, dtype=torch.bool)
    for w, window in enumerate(windows):
        content[w, 1 : len(window) - 1] = True
    shares = torch.tensor([float(max(w.own_end - w.own_start, 1)) for w in windows], device=predictor.device)
    temperature = max(float(temperature), 1e-3)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            emb = model.embed(ids, casing)
            base = model.embed(torch.where(content, predictor.pad_id, ids), torch.where(content, CASE_SPECIAL, casing))
            full = model(ids, mask, inputs_embeds=emb).sentiment_logits.float()
            probs = torch.softmax((full * shares[:, None]).sum(0) / shares.sum() / temperature, dim=-1)
            target = int(probs.argmax())
            f_base = _log_prob(model(ids, mask, inputs_embeds=base).sentiment_logits.float()[None], shares, target,
                               temperature)
            f_full = torch.log(probs[target])
        grads = _integrated_grads(model, ids, mask, emb, base, shares, target, temperature, steps)
    finally:
        model.train(was_training)
    token_attr = ((emb - base) * grads).sum(-1) * content
    weights = [0.0] * len(words)
    for w, window in enumerate(windows):
        for pos, word in enumerate(window.word_ids):
            if word is not None:
                weights[word] += float(token_attr[w, pos])
    ranked = sorted(range(len(words)), key=lambda i: (-abs(weights[i]), i))[: max(0, top_k)]
    return Explanation(
        text=text,
        label=labels[target],
        score=round(float(probs[target]), 6),
        words=[WordWeight(words[i], spans[i][0], spans[i][1], round(weights[i], 6)) for i in ranked],
        delta=round(float(f_full - f_base[0]), 6),
    )


def _integrated_grads(
    model: torch.nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor | None,
    emb: torch.Tensor,
    base: torch.Tensor,
    shares: torch.Tensor,
    target: int,
    temperature: float,
    steps: int,
) -> torch.Tensor:
    """Mean gradient of the target log-prob along the straight path base → emb (midpoint rule)."""
    steps = max(1, steps)
    n_windows = ids.shape[0]
    per_chunk = max(1, 32 // n_windows)
    total = torch.zeros_like(emb)
    alphas = [(k + 0.5) / steps for k in range(steps)]
    with torch.enable_grad():
        for c in range(0, steps, per_chunk):
            chunk = torch.tensor(alphas[c : c + per_chunk], device=emb.device, dtype=emb.dtype)
            k = chunk.shape[0]
            x = base[None] + chunk[:, None, None, None] * (emb - base)[None]
            x = x.reshape(k * n_windows, *emb.shape[1:]).detach().requires_grad_(True)
            out = model(ids.repeat(k, 1), None if mask is None else mask.repeat(k, 1), inputs_embeds=x)
            logits = out.sentiment_logits.float().reshape(k, n_windows, -1)
            f = _log_prob(logits, shares, target, temperature).sum()
            (grad,) = torch.autograd.grad(f, x)
            total += grad.reshape(k, n_windows, *emb.shape[1:]).sum(0)
    return total / steps
