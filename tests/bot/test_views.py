"""Block Kit builders: escaping, Block Kit limits with a visible "…", the modal; and the Slack-free
correction rules."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bot.feedback import CorrectionRequest, is_labeler, resolve_correction, vote_kind
from bot.listeners.common import plain_text
from bot.views import (
    MAX_BLOCKS,
    Shown,
    analysis_blocks,
    analysis_fallback,
    cut,
    escape,
    limit_blocks,
    safe,
    section,
)
from bot.views_modal import correction_modal, parse_submission


def shown(text: str = "Acme & <b>", entities: list[dict] | None = None) -> Shown:
    return Shown(prediction_id=7, text=text, sentiment="negative", sentiment_score=0.91, model_version="v1",
                 entities=entities if entities is not None else [
                     {"text": "<!channel>", "label": "ORG", "start": 0, "end": 10, "score": 0.5}],
                 probs={"negative": 0.91, "neutral": 0.05, "positive": 0.04})


def test_escape_and_cut() -> None:
    assert escape("<!here> & <@U1>") == "&lt;!here&gt; &amp; &lt;@U1&gt;"
    assert cut("abcdef", 4) == "abc…" and cut("abc", 4) == "abc"


@given(st.text(alphabet="a<>&b ", max_size=400), st.integers(min_value=2, max_value=120))
def test_safe_never_exceeds_the_limit_nor_splits_an_entity(text: str, limit: int) -> None:
    out = safe(text, limit)
    assert len(out) <= limit and "<" not in out and ">" not in out
    stripped = out.removesuffix("…")
    assert stripped.count("&") == stripped.count("&amp;") + stripped.count("&lt;") + stripped.count("&gt;")


def test_analysis_reply_escapes_every_user_text() -> None:
    blocks = [b.to_dict() for b in analysis_blocks(shown("hi <!channel>"), show_text=True)]
    raw = json.dumps(blocks) + analysis_fallback(shown())
    assert "<!channel>" not in raw and "<b>" not in raw and "&lt;!channel&gt;" in raw


def test_block_and_text_limits() -> None:
    blocks = limit_blocks([section(f"row {n}") for n in range(120)])
    assert len(blocks) == MAX_BLOCKS and "71 more not shown" in json.dumps(blocks[-1].to_dict())
    many = [{"text": "x" * 150, "label": "ORG", "start": 0, "end": 1, "score": 0.5}] * 200
    for block in analysis_blocks(shown(entities=many), show_text=True):
        data = block.to_dict()
        if data["type"] == "section":
            assert len(data["text"]["text"]) <= 3000
    entity_text = analysis_blocks(shown(entities=many))[1].to_dict()["text"]["text"]
    assert "… and" in entity_text


def test_modal_round_trip_and_title_limit() -> None:
    entities = [{"text": f"E{n} " + "x" * 100, "label": "ORG", "start": 0, "end": 2, "score": 0.5} for n in range(30)]
    view = correction_modal(shown(entities=entities), labels=["ORG", "PER"], metadata={"prediction_id": 7}).to_dict()
    assert len(view["title"]["text"]) <= 24 and len(view["blocks"]) <= 100
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert len(inputs) == 1 + 20 + 2  # sentiment, at most 20 entity rows, the added entity
    state = {"values": {"sentiment": {"value": {"type": "static_select", "selected_option": {"value": "neutral"}}},
                        "entity_3": {"value": {"type": "static_select", "selected_option": {"value": "remove"}}},
                        "add_text": {"value": {"type": "plain_text_input", "value": "Acme"}}}}
    answer = parse_submission({**view, "state": state})
    assert (answer.sentiment, answer.decisions, answer.add_text, answer.add_label) == ("neutral", {3: "remove"},
                                                                                       "Acme", None)
    assert answer.metadata == {"prediction_id": 7}


def test_correction_rules() -> None:
    text = "Acme Corp sued Globex in Paris"
    entities = [{"text": "Acme", "label": "PER", "start": 0, "end": 4}, {"text": "Paris", "label": "LOC",
                                                                         "start": 24, "end": 29}]
    request = CorrectionRequest("negative", {0: "remove", 1: "label:ORG"}, [("Acme Corp", "ORG"), ("Globex", "ORG")])
    corrected, errors = resolve_correction(text, entities, request)
    assert errors == {}
    assert [(e["start"], e["end"], e["label"]) for e in corrected["entities"]] == [(0, 9, "ORG"), (15, 21, "ORG"),
                                                                                  (24, 29, "ORG")]
    _, errors = resolve_correction(text, entities, CorrectionRequest("bad", {}, [("Acme Corp", "ORG")]))
    assert set(errors) == {"sentiment", "add_text"}  # overlaps the kept "Acme"
    _, errors = resolve_correction(text, entities, CorrectionRequest("neutral", {}, [("Zorro", "ORG"), ("x", None)]))
    assert set(errors) == {"add_text", "add_label_1"}


def test_votes_and_labelers() -> None:
    assert [vote_kind(r) for r in ("+1", "thumbsup", "white_check_mark", "-1::skin-tone-3", "x", "eyes")] == [
        "confirm", "confirm", "confirm", "reject", "reject", None]
    groups = {"S1": frozenset({"U2"})}
    assert is_labeler("U9", [], groups.__getitem__)
    assert is_labeler("U2", ["U1", "S1"], groups.__getitem__)
    assert not is_labeler("U3", ["U1", "S1"], groups.__getitem__)


def test_slack_markup_becomes_plain_text() -> None:
    raw = "<@UBOT> ask <@U123|dana> in <#C1|support> about <https://x.io/a|the doc> &amp; <!here> &lt;3"
    assert plain_text(raw, "UBOT") == "ask @dana in #support about the doc & @here <3"
