"""Readers, word splitting, records, splits and manifests (``models.data``); fixtures in tmp_path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.data import (
    Example,
    entity_spans,
    example_from_record,
    example_from_spans,
    example_to_record,
    holdout_split,
    manifest_entry,
    parse_source_spec,
    read_conll,
    read_fpb,
    read_jsonl,
    read_source,
    split_words,
)
from models.errors import DataError


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def check_offsets(ex: Example) -> None:
    assert len(ex.words) == len(ex.offsets)
    assert all(ex.text[s:e] == w for w, (s, e) in zip(ex.words, ex.offsets, strict=True))
    if ex.tags is not None:
        assert len(ex.tags) == len(ex.words)


# ---------------------------------------------------------------- specs


def test_parse_source_spec(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "x@neutral\n")
    assert parse_source_spec(f"fpb:{path}") == ("fpb", path)
    with pytest.raises(DataError, match="FORMAT"):
        parse_source_spec(f"csv:{path}")
    with pytest.raises(DataError, match="FORMAT"):
        parse_source_spec(str(path))
    with pytest.raises(DataError, match="not found"):
        parse_source_spec(f"conll:{tmp_path / 'missing.conll'}")


def test_read_source_dispatches_and_names_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "f.txt", "\nGood news .@positive\nBad news .@negative\n")
    spec = f"fpb:{path}"
    examples = read_source(spec)
    assert [ex.source for ex in examples] == [f"{spec}:2", f"{spec}:3"]
    assert [ex.sentiment for ex in examples] == ["positive", "negative"]


# ---------------------------------------------------------------- CoNLL

CONLL_IOB1_DOCSTART_AFTER = (
    "EU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\ncall NN I-NP O\n\n"
    "Peter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\nB. NNP I-NP B-PER\n\n"
    "-DOCSTART- -X- O O\n\n"
    "BRUSSELS NNP I-NP I-LOC\n1996-08-22 CD I-NP O\n"
    "-DOCSTART- -X- O O"  # at the very end, no final newline, no blank line before it
)


def test_conll_iob1_docstart_after_documents(tmp_path: Path) -> None:
    path = write(tmp_path, "eng.train", CONLL_IOB1_DOCSTART_AFTER)
    examples = read_conll(path)
    assert [ex.words for ex in examples] == [
        ["EU", "rejects", "German", "call"],
        ["Peter", "Blackburn", "B."],
        ["BRUSSELS", "1996-08-22"],
    ]
    assert [ex.tags for ex in examples] == [
        ["B-ORG", "O", "B-MISC", "O"],
        ["B-PER", "I-PER", "B-PER"],
        ["B-LOC", "O"],
    ]
    assert examples[0].text == "EU rejects German call"
    assert examples[1].offsets == [(0, 5), (6, 15), (16, 18)]
    assert [ex.source for ex in examples] == [f"conll:{path}:1", f"conll:{path}:6", f"conll:{path}:12"]
    assert all(ex.sentiment is None for ex in examples)
    for ex in examples:
        check_offsets(ex)


def test_conll_docstart_first_and_in_the_middle(tmp_path: Path) -> None:
    content = "-DOCSTART- -X- O O\n\nA x x B-PER\nB x x O\n-DOCSTART- -X- O O\nC x x B-LOC\n\n\n\n"
    examples = read_conll(write(tmp_path, "d.conll", content))
    assert [ex.words for ex in examples] == [["A", "B"], ["C"]]


def test_conll_tab_separated_with_tab_only_breaks(tmp_path: Path) -> None:
    # WNUT-17: token<TAB>tag, some sentence breaks are a line holding only a tab
    content = (
        "@paulwalk\tO\nEmpire\tB-location\nState\tI-location\n\t\n"
        "watched\u200bwas\tO\n\ufe0f\tO\nDubbz\ufeff\tB-person\n \t \n"
        "x\u00a0y\tO\n"
    )
    path = write(tmp_path, "wnut.conll", content)
    examples = read_conll(path)
    assert [ex.words for ex in examples] == [
        ["@paulwalk", "Empire", "State"],
        ["watched\u200bwas", "\ufe0f", "Dubbz\ufeff"],
        ["x\u00a0y"],  # NBSP is not a column separator: the token is kept whole
    ]
    assert examples[0].tags == ["O", "B-location", "I-location"]
    assert examples[1].tags == ["O", "O", "B-person"]
    for ex in examples:
        check_offsets(ex)


def test_conll_io_tags_and_crlf(tmp_path: Path) -> None:
    # SEC filings (IO only), with CRLF and runs of spaces
    content = "-DOCSTART- -X- O O\r\n\r\nSILICON NNP - I-ORG\r\nVALLEY  NNP - I-ORG\r\nBANK\tNNP\t-\tI-ORG\r\n"
    content += '(" NNP - O\r\nBank NNP - I-ORG\r\n'
    [ex] = read_conll(write(tmp_path, "FIN5.txt", content))
    assert ex.words == ["SILICON", "VALLEY", "BANK", '("', "Bank"]
    assert ex.tags == ["B-ORG", "I-ORG", "I-ORG", "O", "B-ORG"]
    check_offsets(ex)


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        ("A x x O\nlonely\n", 2, "columns"),
        ("A x x O\n\nB x x I-PER\nC x x E-PER\n", 4, "E-PER"),
        ("A O\nB B-\n", 2, "B-"),
        ("A O\nB per\n", 2, "per"),
    ],
)
def test_conll_malformed_names_file_and_line(tmp_path: Path, content: str, line: int, what: str) -> None:
    path = write(tmp_path, "bad.conll", content)
    with pytest.raises(DataError) as info:
        read_conll(path)
    assert f"{path}:{line}:" in str(info.value)
    assert what in str(info.value)


# ---------------------------------------------------------------- Financial PhraseBank


def test_fpb_latin1_crlf_last_at(tmp_path: Path) -> None:
    lines = [
        "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn .@positive",
        "Contact investor@acme.fi for details .@neutral",  # an '@' inside the sentence
        "Sales in Espa\u00f1a fell by 17 % .@negative",
        "Price \u00a3 5 , up 3\u00bc .@ Neutral ",  # label case and spaces are tolerated
    ]
    data = "\r\n".join(lines).encode("latin-1") + b"\r\n"
    path = write(tmp_path, "fpb.txt", data)
    examples = read_fpb(path)
    assert [ex.sentiment for ex in examples] == ["positive", "neutral", "negative", "neutral"]
    assert examples[1].text == "Contact investor@acme.fi for details ."
    assert examples[2].text == "Sales in Espa\u00f1a fell by 17 % ."  # decoded as latin-1, not mojibake
    assert "Espa\u00f1a" in examples[2].words
    assert examples[3].text == "Price \u00a3 5 , up 3\u00bc ."
    assert all("\r" not in ex.text and ex.tags is None for ex in examples)
    for ex in examples:
        check_offsets(ex)


def test_fpb_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "fpb.txt", "Caf\u00e9 \u20ac sales up .@positive\n")
    [ex] = read_fpb(path)
    assert ex.text == "Caf\u00e9 \u20ac sales up ."


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        ("ok .@neutral\n\nno separator here\n", 3, "'@'"),
        ("ok .@neutral\nbad label .@happy\n", 2, "happy"),
        ("ok .@neutral\n   @positive\n", 2, "text"),
    ],
)
def test_fpb_malformed_names_file_and_line(tmp_path: Path, content: str, line: int, what: str) -> None:
    path = write(tmp_path, "fpb.txt", content)
    with pytest.raises(DataError) as info:
        read_fpb(path)
    assert f"{path}:{line}:" in str(info.value)
    assert what in str(info.value)


# ---------------------------------------------------------------- jsonl


def jsonl(tmp_path: Path, *records: Any) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return write(tmp_path, "data.jsonl", "\n".join(lines) + "\n")


def test_jsonl_tasks_present_or_absent(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        {"text": "Acme Corp hired Jo in Berlin.", "entities": [{"start": 0, "end": 9, "label": "ORG"}]},
        "",
        {"text": "Great support, thanks!", "sentiment": "positive"},
        {"text": "Nothing here.", "entities": [], "sentiment": "neutral"},
    )
    a, b, c = read_jsonl(path)
    assert a.words == ["Acme", "Corp", "hired", "Jo", "in", "Berlin", "."]
    assert a.tags == ["B-ORG", "I-ORG", "O", "O", "O", "O", "O"]
    assert a.sentiment is None
    assert b.tags is None and b.sentiment == "positive"
    assert c.tags == ["O", "O", "O"] and c.sentiment == "neutral"
    assert [x.source for x in (a, b, c)] == [f"jsonl:{path}:1", f"jsonl:{path}:3", f"jsonl:{path}:4"]


def test_jsonl_entity_inside_a_word_splits_the_word(tmp_path: Path) -> None:
    text = "Shares of AcmeCorp's unit rose"
    start = text.index("Acme")
    [ex] = read_jsonl(jsonl(tmp_path, {"text": text, "entities": [{"start": start, "end": start + 4, "label": "ORG"}]}))
    assert ex.words == ["Shares", "of", "Acme", "Corp", "'", "s", "unit", "rose"]
    assert ex.tags == ["O", "O", "B-ORG", "O", "O", "O", "O", "O"]
    assert entity_spans(ex) == [(start, start + 4, "ORG")]


def test_jsonl_entity_whitespace_is_trimmed(tmp_path: Path) -> None:
    [ex] = read_jsonl(jsonl(tmp_path, {"text": "in  New York ", "entities": [{"start": 3, "end": 13, "label": "LOC"}]}))
    assert entity_spans(ex) == [(4, 12, "LOC")]


def ent(start: Any, end: Any, label: str) -> dict[str, Any]:
    return {"start": start, "end": end, "label": label}


BAD_RECORDS = [
    ({"text": "abc", "entities": [{"start": 0, "end": 9, "label": "X"}]}, "<= 3"),
    ({"text": "abc", "entities": [{"start": -1, "end": 2, "label": "X"}]}, "start"),
    ({"text": "abc", "entities": [{"start": 2, "end": 2, "label": "X"}]}, "start < end"),
    ({"text": "abc", "entities": [{"start": 0, "end": 1.5, "label": "X"}]}, "integers"),
    ({"text": "abc", "entities": [{"start": False, "end": 1, "label": "X"}]}, "integers"),
    ({"text": "ab cd", "entities": [ent(0, 4, "X"), ent(3, 5, "Y")]}, "overlap"),
    ({"text": "ab cd", "entities": [{"start": 0, "end": 2, "label": "bad label"}]}, "label"),
    ({"text": "ab cd", "entities": [{"start": 2, "end": 3, "label": "X"}]}, "whitespace"),
    ({"text": "ab", "entities": [{"start": 0, "end": 2}]}, "keys"),
    ({"text": "ab", "entities": {"start": 0}}, "list"),
    ({"text": "ab", "sentiment": "happy"}, "happy"),
    ({"text": "ab", "sentiment": "positive", "not_sentiment": "positive"}, "not_sentiment"),
    ({"text": "ab", "weight": "heavy"}, "weight"),
    ({"text": "ab", "weight": -1}, "weight"),
    ({"text": "ab", "unknown": [{"start": 0, "end": 2}]}, "need 'entities'"),
    ({"text": "ab cd", "entities": [ent(0, 5, "X")], "unknown": [{"start": 3, "end": 5}]}, "overlap"),
    ({"text": "ab", "sentimnet": "positive"}, "sentimnet"),
    ({"text": "   ", "sentiment": "neutral"}, "text"),
    ({"sentiment": "neutral"}, "text"),
    (["not", "an", "object"], "object"),
    ("{not json", "JSON"),
]  # fmt: skip


@pytest.mark.parametrize(("record", "what"), BAD_RECORDS)
def test_jsonl_invalid_names_file_and_line(tmp_path: Path, record: Any, what: str) -> None:
    path = jsonl(tmp_path, {"text": "fine", "sentiment": "neutral"}, "", record)
    with pytest.raises(DataError) as info:
        read_jsonl(path)
    assert f"{path}:3:" in str(info.value)
    assert what in str(info.value)


def test_jsonl_latin1_fallback(tmp_path: Path) -> None:
    path = write(tmp_path, "x.jsonl", '{"text": "caf\u00e9", "sentiment": "neutral"}\n'.encode("latin-1"))
    [ex] = read_jsonl(path)
    assert ex.text == "caf\u00e9"


# ---------------------------------------------------------------- records round trip


def test_record_round_trip_through_a_file(tmp_path: Path) -> None:
    originals = [
        example_from_spans("Acme Corp hired Jo in Berlin.", [(0, 9, "ORG"), (22, 28, "LOC")], "positive", weight=2.5),
        example_from_spans("No entities but sentiment 👍", None, "positive"),
        example_from_spans("All O here", [], None),
        example_from_record(
            {
                "text": "Ping @jo about NYSE: IBM now",
                "entities": [{"start": 21, "end": 24, "label": "ORG"}],
                "unknown": [{"start": 5, "end": 8}],
                "not_tags": [{"start": 0, "end": 4, "tag": "B-PER"}],
                "not_sentiment": "negative",
            }
        ),
    ]
    assert originals[3].tags == ["O", None, None, "O", "O", "O", "B-ORG", "O"]
    assert originals[3].not_tags[0] == "B-PER"
    path = tmp_path / "rt.jsonl"
    path.write_text("".join(json.dumps(example_to_record(x)) + "\n" for x in originals), encoding="utf-8")
    again = read_jsonl(path)
    for before, after in zip(originals, again, strict=True):
        after.source = before.source
        assert after == before
    assert "entities" not in example_to_record(originals[1])
    assert "sentiment" not in example_to_record(originals[2])
    assert set(example_to_record(originals[2])) == {"text", "entities"}


def test_record_round_trip_of_conll_example_keeps_spans(tmp_path: Path) -> None:
    [ex] = read_conll(write(tmp_path, "c.conll", "U.S. x x I-LOC\nsaid x x O\nMr x x I-PER\nX x x I-PER\n"))
    record = example_to_record(ex)
    assert record == {
        "text": "U.S. said Mr X",
        "entities": [{"start": 0, "end": 4, "label": "LOC"}, {"start": 10, "end": 14, "label": "PER"}],
    }
    again = example_from_record(record)
    assert entity_spans(again) == entity_spans(ex)


# ---------------------------------------------------------------- split_words

UNICODE = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(list(" \t\n\u00a0\u3000\u200b\u200d\ufe0f\u0301\u20e3.,!?$()'\"-@#😀👩💻中文字한")),
    ),
    max_size=60,
)


def test_split_words_examples() -> None:
    def words(text: str, boundaries: tuple[int, ...] = ()) -> list[str]:
        return [text[s:e] for s, e in split_words(text, boundaries)]

    assert words("Hello, world!") == ["Hello", ",", "world", "!"]
    assert words("  $AAPL rose 5.5%\n") == ["$", "AAPL", "rose", "5", ".", "5", "%"]
    assert words("e\u0301t\u00e9 caf\u00e9") == ["e\u0301t\u00e9", "caf\u00e9"]  # combining mark stays
    assert words("ok 👍🏽 #️⃣ 👩\u200d💻!") == ["ok", "👍🏽", "#️⃣", "👩\u200d💻", "!"]
    assert words("北京欢迎你 abc") == ["北", "京", "欢", "迎", "你", "abc"]
    assert words("zero\u200bwidth \u200b") == ["zero\u200bwidth", "\u200b"]
    assert words("AcmeCorp", (4,)) == ["Acme", "Corp"]
    assert words("ab", (0, 2, 5, -1)) == ["ab"]
    assert words("") == []
    assert words(" \t\u3000\n") == []


@settings(max_examples=300, deadline=None)
@given(data=st.data(), text=UNICODE)
def test_split_words_property(data: st.DataObject, text: str) -> None:
    boundaries = data.draw(st.sets(st.integers(-2, len(text) + 2), max_size=6))
    spans = split_words(text, boundaries)
    covered: set[int] = set()
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        word = text[start:end]
        assert not any(ch.isspace() for ch in word)
        covered.update(range(start, end))
        previous_end = end
    assert covered == {i for i, ch in enumerate(text) if not ch.isspace()}
    starts = {s for s, _ in spans}
    for b in boundaries:
        if 0 < b < len(text) and not text[b].isspace():
            assert b in starts
    ex = example_from_spans(text, None, "neutral") if text.strip() else None
    if ex is not None:
        check_offsets(ex)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), text=UNICODE.filter(lambda t: bool(t.strip())))
def test_example_from_spans_property(data: st.DataObject, text: str) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=6)))
    pairs = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if text[a:b].strip()]
    entities = [(a, b, "T") for a, b in pairs]
    ex = example_from_spans(text, entities, None)
    check_offsets(ex)
    trimmed = [
        (a + len(text[a:b]) - len(text[a:b].lstrip()), b - len(text[a:b]) + len(text[a:b].rstrip())) for a, b in pairs
    ]
    assert entity_spans(ex) == [(a, b, "T") for a, b in trimmed]


# ---------------------------------------------------------------- holdout split and manifest


def _examples(n: int) -> list[Example]:
    return [example_from_spans(f"sentence number {i}", None, "neutral") for i in range(n)]


def test_holdout_split_deterministic() -> None:
    examples = _examples(400)
    train, holdout = holdout_split(examples, 0.25)
    assert len(train) + len(holdout) == 400
    assert 60 < len(holdout) < 140  # a hash split: roughly a quarter
    assert {id(x) for x in train}.isdisjoint({id(x) for x in holdout})
    _, holdout2 = holdout_split(list(reversed(examples)), 0.25)
    assert {x.text for x in holdout2} == {x.text for x in holdout}
    assert [x.text for x in train] == [x.text for x in examples if x.text not in {h.text for h in holdout}]
    _, other = holdout_split(examples, 0.25, salt="other")
    assert {x.text for x in other} != {x.text for x in holdout}


def test_holdout_split_duplicates_and_edges() -> None:
    dup = _examples(50) * 2
    train, holdout = holdout_split(dup, 0.5)
    assert not {x.text for x in train} & {x.text for x in holdout}
    assert holdout_split(dup, 0.0) == (dup, [])
    assert holdout_split(dup, 1.0) == ([], dup)
    with pytest.raises(DataError):
        holdout_split(dup, 1.5)


def test_manifest_entry(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        {"text": "Acme hired Jo", "entities": [ent(0, 4, "ORG"), ent(11, 13, "PER")]},
        {"text": "Jo left", "entities": [{"start": 0, "end": 2, "label": "PER"}], "sentiment": "negative"},
        {"text": "fine", "sentiment": "positive"},
    )  # fmt: skip
    spec = f"jsonl:{path}"
    entry = manifest_entry(spec, read_source(spec))
    assert entry == {
        "spec": spec,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "n": 3,
        "n_ner": 2,
        "n_sentiment": 2,
        "label_counts": {"entities": {"ORG": 1, "PER": 2}, "sentiment": {"negative": 1, "positive": 1}},
    }
