"""Check Web API calls against Slack's official OpenAPI spec (parameter names and required ones).

The spec is ``../shared/slack/slack-api-specs/web-api/slack_web_openapi_v2.json`` (read by path,
never copied). It is the last published one (2021): two methods that ``files_upload_v2`` calls
are newer than it, so their parameters come from Slack's reference pages (listed below).
The HTTP verb is not checked: the spec declares some methods as GET that slack_sdk POSTs,
which Slack accepts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[3] / "shared"
SPEC_PATH = SHARED / "slack" / "slack-api-specs" / "web-api" / "slack_web_openapi_v2.json"

# Methods newer than the 2021 spec: parameters from docs.slack.dev/reference/methods/<method>.
SUPPLEMENT: dict[str, tuple[set[str], set[str]]] = {
    "files.getUploadURLExternal": ({"token", "filename", "length", "alt_txt", "snippet_type"}, {"filename", "length"}),
    "files.completeUploadExternal": (
        {"token", "files", "channel_id", "channels", "initial_comment", "initial_comment_blocks", "thread_ts"},
        {"files"},
    ),
}


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: frozenset[str]
    required: frozenset[str]


class SpecChecker:
    """Validates one call's parameter names against the spec; returns human-readable problems."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.path = path
        self.methods = _load(str(path))

    def check(self, method: str, args: Mapping[str, Any], *, has_auth_header: bool) -> list[str]:
        spec = self.methods.get(method)
        if spec is None:
            return [f"{method}: not a Web API method in the official spec"]
        problems = [f"{method}: unknown parameter {name!r}" for name in sorted(args) if name not in spec.params]
        for name in sorted(spec.required):
            if name == "token" and (has_auth_header or "token" in args):
                continue
            if name not in args:
                problems.append(f"{method}: required parameter {name!r} is missing")
        return problems


@lru_cache(maxsize=2)
def _load(path: str) -> dict[str, MethodSpec]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    methods: dict[str, MethodSpec] = {}
    for raw_path, operations in data["paths"].items():
        name = raw_path.lstrip("/")
        params: set[str] = set()
        required: set[str] = set()
        for op in operations.values():
            for param in op.get("parameters", []):
                params.add(param["name"])
                if param.get("required"):
                    required.add(param["name"])
        methods[name] = MethodSpec(name, frozenset(params), frozenset(required))
    for name, (params, required) in SUPPLEMENT.items():
        methods.setdefault(name, MethodSpec(name, frozenset(params), frozenset(required)))
    return methods
