"""The correction modal: set the sentiment, keep/relabel/remove each entity, add a missed one.

Labels and options are ``plain_text`` (never parsed for mentions, so nothing in them can ping);
user text shown as mrkdwn is escaped. Titles fit 24 characters and options 75.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    InputBlock,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.views import Shown, context, cut, quote, section

CALLBACK_CORRECT = "beacon_correction"
SENTIMENTS = ("negative", "neutral", "positive")
MAX_ENTITY_ROWS = 20
MAX_TITLE = 24
MAX_OPTION = 75
MAX_LABEL = 2000
BLOCK_SENTIMENT = "sentiment"
BLOCK_ADD_TEXT = "add_text"
BLOCK_ADD_LABEL = "add_label"
ACTION = "value"
KEEP = "keep"
REMOVE = "remove"


def entity_block_id(index: int) -> str:
    return f"entity_{index}"


def _option(text: str, value: str) -> Option:
    return Option(text=PlainTextObject(text=cut(text, MAX_OPTION)), value=value[:150])


def _select(options: Sequence[Option], initial: Option | None, placeholder: str) -> StaticSelectElement:
    return StaticSelectElement(action_id=ACTION, options=list(options)[:100], initial_option=initial,
                               placeholder=PlainTextObject(text=placeholder))


def _entity_input(index: int, entity: Mapping[str, Any], labels: Sequence[str]) -> InputBlock:
    label = str(entity.get("label", "?"))
    options = [_option(f"Keep as {label}", KEEP)]
    options += [_option(f"Change to {other}", f"label:{other}") for other in labels if other != label]
    options.append(_option("Remove: not an entity", REMOVE))
    title = cut(f"“{entity.get('text', '')}” ({label})", MAX_LABEL)
    return InputBlock(block_id=entity_block_id(index), label=PlainTextObject(text=title),
                      element=_select(options, options[0], "Keep, change or remove"))


def correction_modal(shown: Shown, *, labels: Sequence[str], metadata: Mapping[str, Any]) -> View:
    """The modal ``views.open`` shows for ``shown``; ``metadata`` travels in ``private_metadata``."""
    sentiment_options = [_option(s, s) for s in SENTIMENTS]
    initial = next((o for o in sentiment_options if o.value == shown.sentiment), None)
    blocks: list[Block] = [
        section("*Message*\n" + quote(shown.text, 1500)),
        InputBlock(block_id=BLOCK_SENTIMENT, label=PlainTextObject(text="Sentiment"),
                   element=_select(sentiment_options, initial, "Pick the right sentiment")),
    ]
    for index, entity in enumerate(shown.entities[:MAX_ENTITY_ROWS]):
        blocks.append(_entity_input(index, entity, labels))
    blocks += [
        InputBlock(block_id=BLOCK_ADD_TEXT, optional=True, label=PlainTextObject(text="Add a missed entity"),
                   hint=PlainTextObject(text="Type it exactly as it is written in the message"),
                   element=PlainTextInputElement(action_id=ACTION, max_length=200)),
        InputBlock(block_id=BLOCK_ADD_LABEL, optional=True, label=PlainTextObject(text="Its label"),
                   element=_select([_option(label, label) for label in labels], None, "Pick a label")),
        context(f"model `{shown.model_version}` · your answer becomes a training label"),
    ]
    return View(
        type="modal", callback_id=CALLBACK_CORRECT, title=PlainTextObject(text=cut("Correct Beacon", MAX_TITLE)),
        submit=PlainTextObject(text="Save"), close=PlainTextObject(text="Cancel"), blocks=blocks,
        private_metadata=json.dumps(dict(metadata), separators=(",", ":")),
    )


@dataclass
class ModalAnswer:
    """What the agent submitted."""

    sentiment: str | None
    decisions: dict[int, str] = field(default_factory=dict)  # entity index -> keep | remove | label:X
    add_text: str | None = None
    add_label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _value(values: Mapping[str, Any], block_id: str) -> str | None:
    element = (values.get(block_id) or {}).get(ACTION) or {}
    selected = element.get("selected_option")
    if selected:
        return str(selected.get("value"))
    value = element.get("value")
    return str(value) if value not in (None, "") else None


def parse_submission(view: Mapping[str, Any]) -> ModalAnswer:
    """Read ``view.state.values`` and ``private_metadata`` of a ``view_submission``."""
    values = (view.get("state") or {}).get("values") or {}
    decisions = {
        int(block_id.split("_", 1)[1]): _value(values, block_id) or KEEP
        for block_id in values if block_id.startswith("entity_")
    }
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        metadata = {}
    return ModalAnswer(
        sentiment=_value(values, BLOCK_SENTIMENT), decisions=decisions, add_text=_value(values, BLOCK_ADD_TEXT),
        add_label=_value(values, BLOCK_ADD_LABEL), metadata=metadata if isinstance(metadata, dict) else {},
    )
