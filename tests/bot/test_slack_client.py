"""The Web API client and gateway against the fake Slack over HTTP: retries, errors, metrics, uploads;
and the fake itself: it checks calls against the official OpenAPI spec."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from prometheus_client import REGISTRY

from bot.errors import SlackError
from bot.slack_client import SlackGateway, SlackPoster, make_web_client
from tests.fakes.openapi import SPEC_PATH, SpecChecker
from tests.fakes.slack import Error, FakeSlack, RateLimited, ServerError


@pytest.fixture
def gateway(fake_slack: FakeSlack, make_settings: Any) -> SlackGateway:
    settings = make_settings(SLACK_BOT_TOKEN="xoxb-1-2-abc", SLACK_API_URL=fake_slack.api_url)
    return SlackGateway(make_web_client(settings))


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_post_returns_the_ts_and_posts_json_blocks(gateway: SlackGateway, fake_slack: FakeSlack) -> None:
    ts = SlackPoster(gateway).post(channel="C1", text="hi", blocks=[{"type": "divider"}], thread_ts="1.2")
    (call,) = fake_slack.calls_to("chat.postMessage")
    assert call.response["ts"] == ts and call.json is not None
    assert call.json["blocks"] == [{"type": "divider"}] and call.json["thread_ts"] == "1.2"
    assert call.headers.get("Authorization") == "Bearer xoxb-1-2-abc"


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "invalid_auth"])
def test_slack_errors_become_slack_error_and_are_counted(gateway: SlackGateway, fake_slack: FakeSlack,
                                                         error: str) -> None:
    before = metric("beacon_slack_api_errors_total", method="chat.postMessage", error=error)
    fake_slack.script("chat.postMessage", Error(error))
    with pytest.raises(SlackError, match=error):
        gateway.post_message(channel="C1", text="x")
    assert metric("beacon_slack_api_errors_total", method="chat.postMessage", error=error) == before + 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # an API error is not retried


def test_server_errors_and_rate_limits_are_retried(gateway: SlackGateway, fake_slack: FakeSlack) -> None:
    limited = metric("beacon_slack_rate_limited_total", method="chat.postMessage")
    fake_slack.script("chat.postMessage", ServerError(503), RateLimited(retry_after=0))
    gateway.post_message(channel="C1", text="x")
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [503, 429, 200]
    assert metric("beacon_slack_rate_limited_total", method="chat.postMessage") == limited + 1


def test_a_long_retry_after_fails_fast_instead_of_blocking(gateway: SlackGateway, fake_slack: FakeSlack) -> None:
    fake_slack.script("chat.postMessage", RateLimited(retry_after=120))
    with pytest.raises(SlackError, match="ratelimited"):
        gateway.post_message(channel="C1", text="x")


def test_connection_errors_become_slack_error(make_settings: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = make_settings(SLACK_BOT_TOKEN="xoxb-1-2-abc", SLACK_API_URL=f"http://127.0.0.1:{port}/api/")
    with pytest.raises(SlackError, match=r"chat\.postMessage failed"):
        SlackGateway(make_web_client(settings)).post_message(channel="C1", text="x")


def test_files_upload_v2_goes_through_all_three_steps(gateway: SlackGateway, fake_slack: FakeSlack) -> None:
    SlackPoster(gateway).upload_file(channel="C1", content=b"\x89PNG fake", filename="r.png", title="Report",
                                     thread_ts="1.2")
    (url_call,) = fake_slack.calls_to("files.getUploadURLExternal")
    assert url_call.args["filename"] == "r.png" and url_call.args["length"] == str(len(b"\x89PNG fake"))
    assert fake_slack.uploads[url_call.response["file_id"]] == b"\x89PNG fake"
    (done,) = fake_slack.calls_to("files.completeUploadExternal")
    assert done.arg("files")[0]["id"] == url_call.response["file_id"] and done.args["channel_id"] == "C1"


def test_user_and_group_lookups_are_cached(gateway: SlackGateway, fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U1", name="bot1", is_bot=True)
    fake_slack.usergroups["S1"] = ["U2", "U3"]
    assert gateway.is_bot_user("U1") and gateway.is_bot_user("U1")
    assert gateway.usergroup_members("S1") == frozenset({"U2", "U3"})
    gateway.usergroup_members("S1")
    assert len(fake_slack.calls_to("users.info")) == 1 and len(fake_slack.calls_to("usergroups.users.list")) == 1


@pytest.mark.skipif(not SPEC_PATH.is_file(), reason=f"the official spec is not at {SPEC_PATH} (../shared absent)")
def test_the_fake_flags_parameters_the_official_spec_does_not_know() -> None:
    checker = SpecChecker()
    assert checker.check("chat.postMessage", {"channel": "C1", "text": "x"}, has_auth_header=True) == []
    assert checker.check("chat.postMessage", {"channel": "C1", "txt": "x"}, has_auth_header=True) == [
        "chat.postMessage: unknown parameter 'txt'"]
    assert checker.check("views.publish", {"view": {}}, has_auth_header=True) == [
        "views.publish: required parameter 'user_id' is missing"]
    assert checker.check("chat.postMessage", {"channel": "C1"}, has_auth_header=False) == [
        "chat.postMessage: required parameter 'token' is missing"]
    assert checker.check("chat.fly", {}, has_auth_header=True)
    with FakeSlack() as slack:
        client = make_web_client_for(slack)
        client.api_call("chat.postMessage", json={"channel": "C1", "text": "x", "colour": "red"})
        assert slack.spec_violations == ["chat.postMessage: unknown parameter 'colour'"]


def make_web_client_for(slack: FakeSlack) -> Any:
    from slack_sdk import WebClient

    return WebClient(token="xoxb-1-2-abc", base_url=slack.api_url)
