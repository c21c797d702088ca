"""App Home: publish the Home tab on ``app_home_opened``."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from bot import home
from bot.listeners.common import Runtime, ack_now, guarded
from bot.log import get_logger
from bot.views_home import home_view

log = get_logger("beacon.home")


def publish_home(rt: Runtime, user_id: str) -> None:
    with rt.session() as session:
        summary = home.summary(session=session)
    rt.slack.publish_home(user_id=user_id, view=home_view(summary))
    log.info("home.published", user=user_id, alerts=len(summary.alerts))


def register(app: App, rt: Runtime) -> None:
    def opened(body: dict[str, Any], context: BoltContext) -> None:
        event = body["event"]
        if event.get("tab", "home") == "home":
            publish_home(rt, str(event["user"]))

    app.event("app_home_opened")(ack=ack_now, lazy=[guarded("app_home_opened", opened)])
