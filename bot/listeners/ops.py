"""The ops report's "Promote" and "Rollback" buttons (posted by ``jobs.retrain``): admins only.

Only users listed in ``BEACON_ADMINS`` may act; anyone else gets an ephemeral refusal and the
attempt is logged. Each action goes through the audited registry (actor ``slack:<user>``), this
process swaps the model in at once (other serving processes on their next poll), and a thread
reply under the report says who did what.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from bot.errors import BeaconError, PermissionDenied
from bot.listeners.common import Runtime, ack_now, guarded
from bot.log import get_logger
from bot.storage import registry

log = get_logger("beacon.ops")
ACTION_PROMOTE = "beacon_model_promote"  # the same ids as jobs.report
ACTION_ROLLBACK = "beacon_model_rollback"
REFUSAL = "Only Beacon's admins (BEACON_ADMINS) can promote or roll back models."


def _click(body: dict[str, Any]) -> tuple[str, str, str, str | None]:
    """(user, value, channel, thread of the report) of a button click."""
    action = (body.get("actions") or [{}])[0]
    container = body.get("container") or {}
    message = body.get("message") or {}
    user = str((body.get("user") or {}).get("id", ""))
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    thread = message.get("thread_ts") or message.get("ts") or container.get("message_ts")
    return user, str(action.get("value") or ""), channel, thread


def check_admin(rt: Runtime, user: str) -> None:
    if user not in rt.deps.settings.admins:
        raise PermissionDenied(f"{user or 'unknown user'} is not an admin")


def _tell(rt: Runtime, *, channel: str, user: str, thread: str | None, text: str) -> None:
    if channel:
        rt.slack.post_ephemeral(channel=channel, user=user, text=text, thread_ts=thread)


def _act(rt: Runtime, body: dict[str, Any], what: str) -> None:
    user, value, channel, thread = _click(body)
    try:
        check_admin(rt, user)
        with rt.session() as session:
            before = registry.active_version(session=session)
            if what == "promote":
                row = registry.get_version(session=session, version=value)
                gate_note = " (overriding the gate's rejection)" if row.status == "rejected" else ""
                done = registry.promote(session=session, version=value, actor=f"slack:{user}",
                                        reason=f"Promote button on the ops report{gate_note}")
            else:
                done = registry.rollback(session=session, actor=f"slack:{user}",
                                         reason="Rollback button on the ops report")
            now, was = done.version, before.version if before else None
    except PermissionDenied:
        log.warning("ops.denied", user=user, action=what, version=value)
        _tell(rt, channel=channel, user=user, thread=thread, text=REFUSAL)
        return
    except BeaconError as exc:  # unknown version, nothing to roll back to...
        log.warning("ops.failed", user=user, action=what, version=value, error=str(exc))
        _tell(rt, channel=channel, user=user, thread=thread, text=f"Could not {what}: {exc}")
        return
    rt.deps.models.reload_if_changed()
    log.info("ops.done", user=user, action=what, active=now, previous=was)
    verb = "promoted" if what == "promote" else "rolled back to"
    if channel:
        rt.slack.post_message(channel=channel, thread_ts=thread,
                              text=f"<@{user}> {verb} `{now}` (was `{was or 'none'}`). Serving processes swap it in "
                                   "without restart.")


def register(app: App, rt: Runtime) -> None:
    def promote(body: dict[str, Any], context: BoltContext) -> None:
        _act(rt, body, "promote")

    def rollback(body: dict[str, Any], context: BoltContext) -> None:
        _act(rt, body, "rollback")

    app.action(ACTION_PROMOTE)(ack=ack_now, lazy=[guarded("model_promote", promote)])
    app.action(ACTION_ROLLBACK)(ack=ack_now, lazy=[guarded("model_rollback", rollback)])
