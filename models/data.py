"""Training records and the ``FORMAT:PATH`` readers (conll, fpb, jsonl).

Every record is an :class:`Example`: a text split into words with exact character offsets,
optional IOB2 word tags, and an optional sentiment label. Either task may be absent.

The jsonl format (Beacon's own), one object a line::

    {"text": "...", "entities": [{"start": 0, "end": 5, "label": "ORG"}], "sentiment": "neutral"}

Optional keys: ``entities`` (absent → no entity annotation; ``[]`` → every word ``O``),
``sentiment``, ``not_sentiment`` (a rejected class), ``unknown`` (``[{"start", "end"}]``: words
whose tag is unknown), ``not_tags`` (``[{"start", "end", "tag"}]``: a tag those words do not
have), ``weight`` (loss scale, default 1), and ``id``/``meta`` (ignored). Any other key is an error.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import DataError
from models.labels import iob1_to_iob2, is_valid_tag, tags_to_spans
from models.words import Span, check_spans, covered, split_words

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
FORMATS: tuple[str, ...] = ("conll", "fpb", "jsonl")


@dataclass
class Example:
    """One training/evaluation record.

    ``words[i] == text[offsets[i][0]:offsets[i][1]]`` always holds.
    ``tags`` are IOB2 tags per word ("O", "B-PER", ...); ``None`` when the example carries no
    entity annotation. A tag may be ``None`` for a single word: unknown, masked in the loss.
    ``not_tags`` (same length as words, or empty) names, per word, a tag the word is known
    NOT to have (from a rejected prediction); ``None`` where nothing is known.
    ``sentiment`` is one of :data:`SENTIMENTS` or ``None``; ``not_sentiment`` is a rejected
    class (complementary label). ``weight`` scales the example's loss.
    """

    text: str
    words: list[str]
    offsets: list[tuple[int, int]]
    tags: list[str | None] | None = None
    sentiment: str | None = None
    not_tags: list[str | None] = field(default_factory=list)
    not_sentiment: str | None = None
    weight: float = 1.0
    source: str = ""  # "FORMAT:PATH:LINE" for error messages and manifests


# ---------------------------------------------------------------- sources


def parse_source_spec(spec: str) -> tuple[str, Path]:
    """Split ``"FORMAT:PATH"``; the format must be known and the file must exist."""
    fmt, sep, rest = spec.partition(":")
    if not sep or fmt not in FORMATS:
        raise DataError(f"bad data source {spec!r}: expected FORMAT:PATH with FORMAT one of {FORMATS}")
    path = Path(rest).expanduser()
    if not path.is_file():
        raise DataError(f"data source {spec!r}: file not found: {path}")
    return fmt, path


def read_source(spec: str) -> list[Example]:
    """Read a ``FORMAT:PATH`` source; each example's ``source`` is ``f"{spec}:{line}"``."""
    fmt, path = parse_source_spec(spec)
    readers: dict[str, Callable[..., list[Example]]] = {
        "conll": read_conll,
        "fpb": read_fpb,
        "jsonl": read_jsonl,
    }
    return readers[fmt](path, spec=spec)


def _decode(path: Path) -> str:
    """UTF-8 (BOM tolerated), else cp1252, else latin-1 (which always succeeds)."""
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _lines(path: Path) -> list[str]:
    # split on "\n" only: str.splitlines would also break on \x1c, \x85, \u2028 inside text.
    try:
        return [line.removesuffix("\r") for line in _decode(path).split("\n")]
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


# ---------------------------------------------------------------- CoNLL

_ASCII_SPACE = " \t\r\n\f\v"


def _conll_example(words: list[str], tags: list[str], source: str) -> Example:
    offsets: list[tuple[int, int]] = []
    pos = 0
    for word in words:
        offsets.append((pos, pos + len(word)))
        pos += len(word) + 1
    iob2: list[str | None] = list(iob1_to_iob2(tags))
    return Example(text=" ".join(words), words=list(words), offsets=offsets, tags=iob2, source=source)


def read_conll(path: Path, *, spec: str | None = None) -> list[Example]:
    """Column files: token first, tag last, separated by spaces or tabs.

    A blank or whitespace-only line ends a sentence; ``-DOCSTART-`` lines are skipped wherever
    they are. IOB1, IOB2 and IO tags are all converted to IOB2.
    """
    label = spec or f"conll:{path}"
    examples: list[Example] = []
    words: list[str] = []
    tags: list[str] = []
    first = 0
    for no, raw in enumerate(_lines(path), 1):
        line = raw.strip(_ASCII_SPACE)
        # split on ASCII spaces/tabs only: a token may hold other Unicode whitespace (NBSP...)
        columns = [c for c in line.replace("\t", " ").split(" ") if c]
        if not columns or columns[0] == "-DOCSTART-":
            if words:
                examples.append(_conll_example(words, tags, f"{label}:{first}"))
                words, tags = [], []
            continue
        if len(columns) < 2:
            raise DataError(f"{path}:{no}: expected 'TOKEN ... TAG' columns, got {raw!r}")
        if not is_valid_tag(columns[-1]):
            raise DataError(f"{path}:{no}: invalid tag {columns[-1]!r} (expected O, B-TYPE or I-TYPE)")
        if not words:
            first = no
        words.append(columns[0])
        tags.append(columns[-1])
    if words:
        examples.append(_conll_example(words, tags, f"{label}:{first}"))
    return examples


# ---------------------------------------------------------------- Financial PhraseBank


def read_fpb(path: Path, *, spec: str | None = None) -> list[Example]:
    """``sentence@label`` lines (split on the last ``@``); UTF-8 or latin-1; LF or CRLF."""
    label = spec or f"fpb:{path}"
    examples: list[Example] = []
    for no, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        sentence, at, sentiment = line.rpartition("@")
        if not at:
            raise DataError(f"{path}:{no}: no '@' between sentence and label: {line[:80]!r}")
        sentiment = sentiment.strip().lower()
        if sentiment not in SENTIMENTS:
            raise DataError(f"{path}:{no}: label {sentiment!r} is not one of {SENTIMENTS}")
        try:
            examples.append(example_from_spans(sentence, None, sentiment, source=f"{label}:{no}"))
        except DataError as exc:
            raise DataError(f"{path}:{no}: {exc}") from exc
    return examples


# ---------------------------------------------------------------- jsonl

_RECORD_KEYS = frozenset(
    {"text", "entities", "sentiment", "not_sentiment", "unknown", "not_tags", "weight", "id", "meta"}
)


def read_jsonl(path: Path, *, spec: str | None = None) -> list[Example]:
    """Beacon's own format (see the module docstring); blank lines are skipped."""
    label = spec or f"jsonl:{path}"
    examples: list[Example] = []
    for no, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{no}: invalid JSON: {exc.msg} at column {exc.colno}") from exc
        try:
            examples.append(example_from_record(record, source=f"{label}:{no}"))
        except DataError as exc:
            raise DataError(f"{path}:{no}: {exc}") from exc
    return examples


def _span_list(value: Any, key: str, with_label: str | None) -> list[Span]:
    if not isinstance(value, list):
        raise DataError(f"{key!r} must be a list, got {type(value).__name__}")
    spans: list[Span] = []
    for item in value:
        wanted = {"start", "end"} | ({with_label} if with_label else set())
        if not isinstance(item, dict) or set(item) != wanted:
            raise DataError(f"{key!r} items must be objects with keys {sorted(wanted)}, got {item!r}")
        spans.append((item["start"], item["end"], item[with_label] if with_label else ""))
    return spans


def example_from_record(record: Any, *, source: str = "") -> Example:
    """Validate one jsonl record (a parsed JSON object) and build its :class:`Example`."""
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object, got {type(record).__name__}")
    unknown_keys = sorted(set(record) - _RECORD_KEYS)
    if unknown_keys:
        raise DataError(f"unknown keys {unknown_keys}; allowed: {sorted(_RECORD_KEYS)}")
    if "text" not in record:
        raise DataError("missing 'text'")
    entities = record.get("entities")
    return _build(
        record["text"],
        None if entities is None else _span_list(entities, "entities", "label"),
        record.get("sentiment"),
        unknown=_span_list(record.get("unknown", []), "unknown", None),
        not_tags=_span_list(record.get("not_tags", []), "not_tags", "tag"),
        not_sentiment=record.get("not_sentiment"),
        weight=record.get("weight", 1.0),
        source=source,
    )


def example_from_spans(
    text: str,
    entities: Sequence[tuple[int, int, str]] | None,
    sentiment: str | None,
    *,
    source: str = "",
    weight: float = 1.0,
) -> Example:
    """An :class:`Example` from character-span entities; words split so spans fall on word edges.

    ``entities=None`` means no entity annotation (``tags=None``); ``[]`` means all ``O``.
    """
    return _build(text, entities, sentiment, source=source, weight=weight)


def _check_sentiment(value: Any, key: str) -> str | None:
    if value is not None and value not in SENTIMENTS:
        raise DataError(f"{key} {value!r} is not one of {SENTIMENTS}")
    return value  # type: ignore[no-any-return]


def _build(
    text: Any,
    entities: Sequence[Span] | None,
    sentiment: Any,
    *,
    unknown: Sequence[Span] = (),
    not_tags: Sequence[Span] = (),
    not_sentiment: Any = None,
    weight: Any = 1.0,
    source: str = "",
) -> Example:
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"text must be a non-empty string, got {text!r}")
    _check_sentiment(sentiment, "sentiment")
    if _check_sentiment(not_sentiment, "not_sentiment") is not None and not_sentiment == sentiment:
        raise DataError(f"not_sentiment equals sentiment {sentiment!r}")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise DataError(f"weight must be a finite number, got {weight!r}")
    if weight < 0:
        raise DataError(f"weight must be >= 0, got {weight!r}")
    if entities is None and unknown:
        raise DataError("'unknown' spans need 'entities'")
    ents = check_spans(text, entities or (), "entity", _check_type)
    unk = check_spans(text, unknown, "unknown span")
    nots = check_spans(text, not_tags, "not_tags span", _check_tag)
    check_spans(text, [*ents, *unk], "entity/unknown span")  # no unknown word inside an entity
    edges = {pos for s, e, _ in (*ents, *unk, *nots) for pos in (s, e)}
    offsets = split_words(text, edges)
    starts = [s for s, _ in offsets]
    tags: list[str | None] | None = None
    if entities is not None:
        tags = ["O"] * len(offsets)
        for s, e, kind in ents:
            for n, i in enumerate(covered(starts, s, e)):
                tags[i] = ("B-" if n == 0 else "I-") + kind
        for s, e, _ in unk:
            for i in covered(starts, s, e):
                tags[i] = None
    not_list: list[str | None] = [None] * len(offsets) if nots else []
    for s, e, tag in nots:
        for i in covered(starts, s, e):
            not_list[i] = tag
    return Example(
        text=text,
        words=[text[s:e] for s, e in offsets],
        offsets=offsets,
        tags=tags,
        sentiment=sentiment,
        not_tags=not_list,
        not_sentiment=not_sentiment,
        weight=float(weight),
        source=source,
    )


def _check_type(kind: str) -> None:
    if not isinstance(kind, str) or not is_valid_tag(f"B-{kind}"):
        raise DataError(f"invalid entity label {kind!r}")


def _check_tag(tag: str) -> None:
    if not is_valid_tag(tag):
        raise DataError(f"invalid tag {tag!r}")


# ---------------------------------------------------------------- back to records


def entity_spans(ex: Example) -> list[tuple[int, int, str]]:
    """Character spans ``(start, end, type)`` of the entities in ``ex.tags``."""
    if ex.tags is None:
        return []
    return [(ex.offsets[s][0], ex.offsets[e - 1][1], kind) for s, e, kind in tags_to_spans(ex.tags)]


def example_to_record(ex: Example) -> dict[str, Any]:
    """The jsonl record of ``ex``; only the keys the example has. Inverse of the jsonl reader."""
    record: dict[str, Any] = {"text": ex.text}
    if ex.tags is not None:
        record["entities"] = [{"start": s, "end": e, "label": k} for s, e, k in entity_spans(ex)]
        unknown = [{"start": s, "end": e} for (s, e), t in zip(ex.offsets, ex.tags, strict=True) if t is None]
        if unknown:
            record["unknown"] = unknown
    if ex.sentiment is not None:
        record["sentiment"] = ex.sentiment
    if ex.not_sentiment is not None:
        record["not_sentiment"] = ex.not_sentiment
    pairs = zip(ex.offsets, ex.not_tags, strict=True) if ex.not_tags else ()
    not_tags = [{"start": s, "end": e, "tag": t} for (s, e), t in pairs if t is not None]
    if not_tags:
        record["not_tags"] = not_tags
    if ex.weight != 1.0:
        record["weight"] = ex.weight
    return record


# ---------------------------------------------------------------- splits and manifests


def holdout_split(
    examples: Sequence[Example], fraction: float, *, salt: str = "beacon"
) -> tuple[list[Example], list[Example]]:
    """``(train, holdout)``: an example goes to holdout when sha1(salt, text) falls under ``fraction``.

    Deterministic and order-independent; identical texts always land on the same side.
    """
    if not 0.0 <= fraction <= 1.0:
        raise DataError(f"holdout fraction must be within [0, 1], got {fraction}")
    train: list[Example] = []
    holdout: list[Example] = []
    for ex in examples:
        digest = hashlib.sha1(f"{salt}\x00{ex.text}".encode("utf-8", "surrogatepass")).digest()
        (holdout if int.from_bytes(digest[:8], "big") < fraction * 2**64 else train).append(ex)
    return train, holdout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_entry(spec: str, examples: Sequence[Example]) -> dict[str, Any]:
    """What a model was trained on: spec, file sha256, counts and label counts.

    ``label_counts`` is ``{"entities": {TYPE: n_entities}, "sentiment": {LABEL: n}}``.
    """
    _, path = parse_source_spec(spec)
    entities: Counter[str] = Counter()
    sentiments: Counter[str] = Counter()
    for ex in examples:
        entities.update(kind for _, _, kind in tags_to_spans(ex.tags or []))
        if ex.sentiment is not None:
            sentiments[ex.sentiment] += 1
    return {
        "spec": spec,
        "sha256": _sha256(path),
        "n": len(examples),
        "n_ner": sum(ex.tags is not None for ex in examples),
        "n_sentiment": sum(ex.sentiment is not None for ex in examples),
        "label_counts": {"entities": dict(sorted(entities.items())), "sentiment": dict(sorted(sentiments.items()))},
    }
