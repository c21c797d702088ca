"""What listeners, services and jobs need, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.model_holder import ModelHolder
from bot.settings import Settings


@dataclass
class Deps:
    settings: Settings
    sessions: sessionmaker[Session]
    models: ModelHolder
    log: Any
