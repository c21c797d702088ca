from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from models.encoding import Encoded, make_windows, window_tensors


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.integers(min_value=1, max_value=4), max_size=120),
    max_length=st.integers(min_value=3, max_value=40),
    overlap=st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
)
def test_windows_partition_tokens_and_words(pieces: list[int], max_length: int, overlap: int | None) -> None:
    word_ids = [w for w, n in enumerate(pieces) for _ in range(n)]
    enc = Encoded(list(range(100, 100 + len(word_ids))), word_ids, [1] * len(word_ids))
    windows = make_windows([enc], cls_id=1, sep_id=2, max_length=max_length, overlap=overlap)
    assert windows and all(len(w) <= max_length for w in windows)
    owned = sorted(t for w in windows for t in range(w.own_start, w.own_end))
    assert owned == list(range(len(word_ids)))  # every sub-token owned exactly once: no truncation
    firsts = sorted(word for w in windows for word, _ in w.firsts)
    assert firsts == list(range(len(pieces)))  # every word predicted exactly once
    for w in windows:
        assert w.input_ids[0] == 1 and w.input_ids[-1] == 2
        for word, pos in w.firsts:
            token = w.start + pos - 1
            assert w.own_start <= token < w.own_end and word_ids[token] == word
            assert token == 0 or word_ids[token - 1] != word  # the word's FIRST sub-token
            assert w.input_ids[pos] == 100 + token


def test_window_tensors_skip_the_mask_when_nothing_is_padded() -> None:
    import torch

    enc = [Encoded([5, 6], [0, 1], [1, 2]), Encoded([7], [0], [3])]
    windows = make_windows(enc, cls_id=1, sep_id=2, max_length=8)
    ids, mask, casing = window_tensors(windows, 0, torch.device("cpu"))
    assert ids.tolist() == [[1, 5, 6, 2], [1, 7, 2, 0]]
    assert mask is not None and mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert casing.tolist() == [[0, 1, 2, 0], [0, 3, 0, 0]]
    _, no_mask, _ = window_tensors(windows[:1], 0, torch.device("cpu"))
    assert no_mask is None
