"""Bolt listeners, one module per kind, each with ``register(app, runtime)``."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, home, mentions, messages, ops, reactions
from bot.listeners.common import Runtime

MODULES = (mentions, messages, reactions, actions, commands, home, ops)


def register_all(app: App, rt: Runtime) -> None:
    for module in MODULES:
        module.register(app, rt)
