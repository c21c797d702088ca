"""Load on the bot's real HTTP endpoint: signed mentions and reactions, ack latency, no lost feedback.

Starts the fake Slack Web API (tests/fakes) and ``beacon serve`` as a subprocess (uvicorn, Bolt,
a real database), warms up with mentions so there are bot posts to react to, then sends
``--events`` signed events (half mentions, half 👍 reactions by distinct users) evenly over
``--seconds``. It reports the ack latency (client-measured p50/p99/max, and the server's own
histogram), the HTTP errors, and checks that every reaction became exactly one feedback row.

    python benchmarks/slack_load.py                 # 2,000 events over 60 s (target: p99 < 100 ms)
    python benchmarks/slack_load.py --events 200 --seconds 10

The model is the artifact given with ``--model`` (e.g. one `beacon train` wrote); by default a
tiny random BERT, since acks never wait for the model (analysis runs in lazy listeners).
Mention texts come from ../shared/data/airline_support_sentiment when present.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from tests.fakes import events  # noqa: E402
from tests.fakes.events import SlackSender  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

SECRET = "load-test-signing-secret-0123456789"
TOKEN = "xoxb-1000-2000-loadtestloadtest"
CHANNEL = "C0LOADTEST"
DATA = REPO.parent / "shared" / "data" / "airline_support_sentiment" / "train.csv"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events in the timed phase")
    parser.add_argument("--seconds", type=float, default=60.0, help="spread them over this many seconds")
    parser.add_argument("--warmup", type=int, default=50, help="mentions answered before the timed phase")
    parser.add_argument("--workers", type=int, default=16, help="concurrent client connections")
    parser.add_argument("--model", type=Path, default=None, help="a model artifact folder (default: tiny random)")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    parser.add_argument("--port", type=int, default=0, help="bot port (default: a free one)")
    parser.add_argument("--target-p99-ms", type=float, default=100.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON result here")
    return parser.parse_args()


def texts(n: int) -> list[str]:
    """Support messages: the airline tweets when ../shared is there, else generated ones."""
    found: list[str] = []
    if DATA.is_file():
        with DATA.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                found.append(row["text"])
                if len(found) >= n:
                    break
    while len(found) < n:
        found.append(f"Order {8000 + len(found)} from Acme Corp has not arrived and support won't answer")
    return found


def tiny_model(folder: Path) -> Path:
    import torch

    from models.artifact import ArtifactMeta, save_artifact
    from tests.models.tiny import tiny_model as build
    from tests.models.tiny import write_tokenizer

    torch.manual_seed(0)
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    tokenizer = write_tokenizer(folder / "tokenizer")
    meta = ArtifactMeta(model_version="load-test-tiny", ner_labels=labels,
                        sentiment_labels=["negative", "neutral", "positive"], encoder_config={})
    return save_artifact(folder / "artifact", build(tokenizer, labels=len(labels)), tokenizer, meta)


def prepare_database(url: str, model: Path) -> None:
    from bot.storage import registry
    from bot.storage.db import make_engine, make_session_factory, session_scope, upgrade
    from models.artifact import read_meta

    engine = make_engine(url)
    upgrade(engine)
    version = read_meta(model).model_version
    with session_scope(make_session_factory(engine)) as session:
        if registry.active_version(session=session) is None:
            registry.register_version(session=session, version=version, path=str(model), metrics={})
            registry.promote(session=session, version=version, actor="slack_load")
    engine.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_bot(args: argparse.Namespace, home: Path, db_url: str, api_url: str, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEACON_", "SLACK_", "DATABASE_URL"))}
    env.update(SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=api_url, DATABASE_URL=db_url,
               BEACON_HOME=str(home), BEACON_LOG_LEVEL="WARNING", BEACON_LOG_FORMAT="json", HF_HUB_OFFLINE="1",
               BEACON_MODEL_RELOAD_SECONDS="3600")
    log = (home / "bot.log").open("w", encoding="utf-8")
    return subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "serve", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, cwd=home, stdout=log, stderr=log, text=True)


def wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the bot exited with {proc.returncode}; see its log")
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the bot did not become healthy in time")


def posts(slack: FakeSlack) -> list[str]:
    return [c.response["ts"] for c in slack.calls_to("chat.postMessage", where=lambda c: bool(c.response.get("ok")))]


def warm_up(sender: SlackSender, slack: FakeSlack, samples: list[str], n: int) -> list[str]:
    for text in samples[:n]:
        sender.event(events.envelope(events.app_mention(text, user="U0WARMUP", channel=CHANNEL,
                                                        bot_user_id=slack.bot_user_id), bot_user_id=slack.bot_user_id))
    slack.wait_for("chat.postMessage", n, timeout=300.0)
    time.sleep(1.0)  # the bot_posts rows are written right after each post returns
    return posts(slack)


def plan(n: int, samples: list[str], targets: list[str], bot_user: str) -> list[tuple[str, dict[str, Any]]]:
    """Alternating mentions and 👍 reactions; every reaction is a distinct (user, post) pair."""
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(n):
        if i % 2 == 0:
            event = events.app_mention(samples[i % len(samples)], user=f"U{i:08d}", channel=CHANNEL,
                                       bot_user_id=bot_user)
            out.append(("mention", events.envelope(event, bot_user_id=bot_user)))
        else:
            event = events.reaction("reaction_added", "+1", user=f"U{i:08d}", channel=CHANNEL,
                                    ts=targets[i % len(targets)], item_user=bot_user)
            out.append(("reaction", events.envelope(event, bot_user_id=bot_user)))
    return out


def fire(sender: SlackSender, work: list[tuple[str, dict[str, Any]]], seconds: float, workers: int
         ) -> tuple[list[float], int]:
    """Send at a constant rate; returns the latencies (ms) and the number of non-200 answers."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start = time.monotonic()
    interval = seconds / max(len(work), 1)

    def send(index: int, payload: dict[str, Any]) -> None:
        nonlocal errors
        delay = start + index * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        try:
            status = sender.event(payload).status_code
        except httpx.HTTPError:
            status = 0
        elapsed = (time.perf_counter() - t0) * 1000
        with lock:
            latencies.append(elapsed)
            errors += status != 200

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for index, (_, payload) in enumerate(work):
            pool.submit(send, index, payload)
    return latencies, errors


def feedback_rows(db_url: str) -> int:
    from sqlalchemy import func, select

    from bot.storage.db import make_engine, make_session_factory
    from bot.storage.tables import Feedback

    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        count = int(session.scalar(select(func.count()).select_from(Feedback)) or 0)
    engine.dispose()
    return count


def settle(db_url: str, expected: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    found = feedback_rows(db_url)
    while found < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        found = feedback_rows(db_url)
    return found


def server_p99(url: str) -> float | None:
    """The p99 of the bot's own ack histogram (bucket upper bound), in ms."""
    text = httpx.get(url + "/metrics").text
    buckets = [(float(line.split('le="')[1].split('"')[0].replace("+Inf", "inf")), float(line.rsplit(" ", 1)[1]))
               for line in text.splitlines() if line.startswith("beacon_ack_latency_seconds_bucket")]
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    return next(le * 1000 for le, count in buckets if count >= 0.99 * total)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    args = parse_args()
    home = Path(tempfile.mkdtemp(prefix="beacon-load-"))
    db_url = args.database_url or f"sqlite:///{home / 'beacon.db'}"
    model = args.model or tiny_model(home / "model")
    prepare_database(db_url, model)
    samples = texts(max(args.events, args.warmup))
    with FakeSlack(check_spec=False) as slack:
        port = args.port or free_port()
        proc = start_bot(args, home, db_url, slack.api_url, port)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc)
            sender = SlackSender(url + "/slack/events", SECRET,
                                 client=httpx.Client(timeout=30.0, limits=httpx.Limits(max_connections=args.workers)))
            targets = warm_up(sender, slack, samples, args.warmup)
            before = feedback_rows(db_url)
            work = plan(args.events, samples, targets, slack.bot_user_id)
            latencies, errors = fire(sender, work, args.seconds, args.workers)
            reactions = sum(kind == "reaction" for kind, _ in work)
            found = settle(db_url, before + reactions) - before
            mentions = sum(kind == "mention" for kind, _ in work)
            answered = len(posts(slack)) - len(targets)
            result = {
                "events": len(work), "seconds": args.seconds, "mentions": mentions, "reactions": reactions,
                "ack_ms": {"p50": round(statistics.median(latencies), 2), "p99": round(percentile(latencies, 0.99), 2),
                           "max": round(max(latencies), 2), "mean": round(statistics.fmean(latencies), 2)},
                "server_ack_p99_ms_bucket": server_p99(url), "http_errors": errors,
                "feedback_rows_expected": reactions, "feedback_rows_found": found,
                "feedback_rows_lost": reactions - found, "mentions_answered_so_far": answered,
                "target_p99_ms": args.target_p99_ms, "model": str(model), "database": db_url.split(":", 1)[0],
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ok = result["ack_ms"]["p99"] < args.target_p99_ms and result["feedback_rows_lost"] == 0 and errors == 0
    print("PASS" if ok else "FAIL", f"ack p50 {result['ack_ms']['p50']} ms, p99 {result['ack_ms']['p99']} ms, "
          f"{result['feedback_rows_lost']} feedback rows lost, {errors} HTTP errors")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
