"""How Slack-free code (jobs, services) posts a message: a small protocol.

Implemented by the Slack Web API poster (``bot.slack_client``) and by the console's poster.
``post`` returns the message ``ts`` and raises ``bot.errors.SlackError`` on failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Poster(Protocol):
    def post(
        self, *, channel: str, text: str, blocks: Sequence[Any] | None = None, thread_ts: str | None = None
    ) -> str: ...
