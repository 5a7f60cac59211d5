"""PII seeded in every field of every route never reaches storage, logs, the
broker or the model.

Values of every kind the policy knows (distinct ones, generated) go into every
field an agent controls: trace identifiers, names and free text, JSON keys and
values, step names, outcomes, OTLP (JSON and protobuf) resource and span
attributes, Claude Code hook payloads, and the skills API's agent/session
headers. The loop then runs on them (incidents, embedding, clustering, drafting,
approval, rollups), so derived data (signatures, mode labels, skill names, audit,
fetch log) is in the database too. A `pg_dump` of the whole database must hold
none of the raw values.

Values sit in realistic contexts (glued to identifiers with "_", inside file
paths and URLs, as key=value, at a sentence's end, as JSON keys) and go through
MCP (tool arguments and session ids), the discovery index's headers and the
skills API's too. Then: the console log (the configured handler and its
filter), the messages queued in a real Redis broker, and every request sent to
a model endpoint (the real SDK against a local fake) must hold none either.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import random
import string

import pytest
from django.test import TestCase
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from skills.models import Skill
from tests.traces.test_pii_storage import _dump
from traces.models import Trace
from workspaces.logredaction import RedactingFilter

_n = itertools.count(1)
_rng = random.Random(7)


def _luhn_complete(prefix: str) -> str:
    from workspaces.redaction import luhn_valid

    return next(prefix + str(d) for d in range(10) if luhn_valid(prefix + str(d)))


def _iban(i: int) -> str:
    bban = f"37040044{i:010d}"
    digits = "".join(str(int(c, 36)) for c in bban + "DE00")
    return f"DE{98 - int(digits) % 97:02d}{bban}"


def _token(length: int, extra: str = "") -> str:
    alphabet = string.ascii_letters + string.digits + extra
    while True:
        value = "".join(_rng.choice(alphabet) for _ in range(length))
        if (any(c.isdigit() for c in value) and any(c.isupper() for c in value)
                and any(c.islower() for c in value) and (not extra or any(c in extra for c in value))):  # fmt: skip
            return value


GENERATORS = {
    "EMAIL": lambda i: f"probe{i}.person@example.org",
    "PHONE": lambda i: f"+1415{5550000 + i:07d}",
    "CREDIT_CARD": lambda i: _luhn_complete(f"4{i:014d}"),
    "IP_ADDRESS": lambda i: f"198.51.{100 + i // 250}.{i % 250 + 1}",
    "IBAN": _iban,
    "SSN": lambda i: f"{123 + i % 500:03d}-{45 + i % 50:02d}-{1000 + i:04d}",
    "API_KEY": lambda i: f"sk-ant-api03-{_token(28)}",
    "AWS_SECRET": lambda i: _token(40, "/+"),
    "SECRET": lambda i: _token(36),
    "JWT": lambda i: f"eyJ{_token(12)}.eyJ{_token(16)}.{_token(20)}",
    "AWS_SECRET_PLAIN": lambda i: _token(40),  # no / or +, like ~28% of real keys
    "TOKEN_64": lambda i: _token(64),
    "PRIVATE_KEY": lambda i: (
        "-----BEGIN RSA PRIVATE KEY-----\n"
        + _token(64, "+/")
        + "\n"
        + _token(64, "+/")
        + "\n-----END RSA PRIVATE KEY-----"
    ),
}
# Free-text fields only: kinds whose raw form cannot sit inside an identifier-like
# token without changing meaning are seeded where agents write text.
TEXT_ONLY = {"JWT", "API_KEY", "AWS_SECRET", "SECRET", "AWS_SECRET_PLAIN", "TOKEN_64",
             "PRIVATE_KEY"}  # fmt: skip
# Where agents' text puts such values.
CONTEXTS = [
    "{v}", "customer_card_{v}", "/srv/app/uploads/{v}/receipt.pdf",
    "https://api.example.com/v1/users/{v}/orders?expand=1", "aws_secret_access_key={v}",
    "request from {v}.", "X-Api-Token: {v}", "id_{v}_end", "(see {v})", "user={v} latency=12ms",
]  # fmt: skip


class Seeds:
    """Hands out a fresh value of each kind in turn and remembers every one."""

    def __init__(self) -> None:
        self.values: list[tuple[str, str]] = []
        self._kinds = itertools.cycle(GENERATORS)

    def one(self, *, identifier: bool = False) -> str:
        kind = next(self._kinds)
        while identifier and kind in TEXT_ONLY:
            kind = next(self._kinds)
        value = GENERATORS[kind](next(_n))
        self.values.append((kind, value))
        return value

    def text(self, count: int = 4) -> str:
        return " and ".join(_rng.choice(CONTEXTS).format(v=self.one()) for _ in range(count))


def _native(seeds: Seeds, i: int, agent: str = "") -> dict:
    return {
        "external_id": f"run-{seeds.one(identifier=True)}",
        "agent": agent or f"agent-{seeds.one(identifier=True)}",
        "session_id": f"session-{seeds.one(identifier=True)}",
        "model": f"model-{seeds.one(identifier=True)}",
        "skills_in_scope": [f"skill-{seeds.one(identifier=True)}"],
        "task": f"Help {seeds.text()}",
        "status": "failed",
        "metadata": {f"key-{seeds.one(identifier=True)}": seeds.text(2),
                     "nested": {"list": [seeds.text(2)]}},  # fmt: skip
        "steps": [
            {"kind": "user_prompt", "input": {"message": seeds.text()}},
            {"kind": "tool_call", "name": f"ctx-{seeds.one(identifier=True)}-end",
             "input": {f"arg-{seeds.one(identifier=True)}": seeds.text(2)},
             "output": seeds.text(), "error": f"probe error {seeds.text(2)}"},
            {"kind": "tool_call", "name": "payments.refund", "input": {"order": i},
             "error": f"429 for {_email(seeds)}"},
        ],
    }  # fmt: skip


def _succeeded(seeds: Seeds, i: int, agent: str) -> dict:
    """A run of the same agent that went through: the contrast a draft rests on."""
    return {
        "external_id": f"ok-{seeds.one(identifier=True)}", "agent": agent,
        "session_id": f"session-{seeds.one(identifier=True)}", "task": f"Help {seeds.text()}",
        "status": "succeeded",
        "steps": [
            {"kind": "user_prompt", "input": {"message": seeds.text()}},
            {"kind": "tool_call", "name": "payments.refund", "input": {"order": i},
             "output": seeds.text()},
        ],
    }  # fmt: skip


def _email(seeds: Seeds) -> str:
    value = GENERATORS["EMAIL"](next(_n))
    seeds.values.append(("EMAIL", value))
    return value


def _rate_limited(seeds: Seeds, i: int, agent: str, retried: bool) -> dict:
    """A refund that hit the 429 for a customer's address: it failed, or (`retried`)
    it was sent again and went through. The failures make a mode whose draft quotes
    the error; the retried runs are what its instruction ("not done until a call
    succeeds") is backtested on, so it reaches the queue and is published."""
    run = _succeeded(seeds, i, agent)
    run["external_id"] = f"{'retried' if retried else 'limited'}-{seeds.one(identifier=True)}"
    run["steps"].insert(1, {"kind": "tool_call", "name": "payments.refund", "input": {"order": i},
                            "error": f"429 for {_email(seeds)}"})  # fmt: skip
    if not retried:
        run["status"] = "failed"
        run["steps"].pop()
    return run


def _otlp_spans(seeds: Seeds) -> dict:
    def attr(key: str, value: str) -> dict:
        return {"key": key, "value": {"stringValue": value}}

    return {"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", f"svc-{seeds.one(identifier=True)}")]},
        "scopeSpans": [{"spans": [{
            "traceId": f"{next(_n):032x}", "spanId": f"{next(_n):016x}",
            "name": f"span-{seeds.one(identifier=True)}",
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
            "status": {"code": 2, "message": seeds.text(2)},
            "attributes": [
                attr("gen_ai.tool.name", f"tool-{seeds.one(identifier=True)}"),
                attr("gen_ai.conversation.id", f"conv-{seeds.one(identifier=True)}"),
                attr("input.value", seeds.text(2)), attr("output.value", seeds.text(2)),
                attr(f"custom.{seeds.one(identifier=True)}", seeds.text(2)),
            ],
        }]}],
    }]}  # fmt: skip


def _protobuf(seeds: Seeds) -> bytes:
    from google.protobuf import json_format

    message = ExportTraceServiceRequest()
    data = _otlp_spans(seeds)
    for rs in data["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                span["traceId"] = bytes.fromhex(span["traceId"]).hex()
    json_format.ParseDict(_to_base64_ids(data), message)
    return message.SerializeToString()


def _to_base64_ids(data: dict) -> dict:
    import base64

    for rs in data["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId"):
                    span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return data


def _hooks(seeds: Seeds) -> list[dict]:
    session = f"sess-{seeds.one(identifier=True)}"
    return [
        {"session_id": session, "hook_event_name": "SessionStart",
         "model": f"model-{seeds.one(identifier=True)}"},
        {"session_id": session, "hook_event_name": "UserPromptSubmit", "prompt": seeds.text()},
        {"session_id": session, "hook_event_name": "PreToolUse",
         "tool_name": f"tool-{seeds.one(identifier=True)}",
         "agent_type": f"agent-{seeds.one(identifier=True)}",
         "tool_input": {"command": seeds.text(2)}},
        {"session_id": session, "hook_event_name": "PostToolUseFailure",
         "tool_name": "Bash", "tool_input": {"command": seeds.text(2)},
         "error": seeds.text(2)},
        {"session_id": session, "hook_event_name": "Stop"},
    ]  # fmt: skip


@pytest.fixture
def console():
    """What the configured console handler (with its redacting filter) writes."""
    handler = next(h for h in logging.getLogger().handlers
                   if any(isinstance(f, RedactingFilter) for f in h.filters))  # fmt: skip
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    handler.setStream(previous)  # type: ignore[attr-defined]


def _mcp(client, headers, tool: str, arguments: dict) -> dict:  # type: ignore[no-untyped-def]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}  # fmt: skip
    response = client.post("/mcp", json.dumps(body), content_type="application/json",
                           headers={**headers, "Accept": "application/json, text/event-stream"})  # fmt: skip
    assert response.status_code == 200, response.content[:300]
    return json.loads(response.content)


def _broker_holds_none(client, headers, seeds: Seeds) -> None:  # type: ignore[no-untyped-def]
    """Ingest with a real Redis broker behind it (no worker): the queued messages."""
    import base64
    import shutil
    import tempfile
    from pathlib import Path

    import redis

    from hivemind_web import embedded_broker
    from tests.factories import celery_broker

    directory = Path(tempfile.mkdtemp(prefix="hm-", dir="/tmp"))
    broker = embedded_broker.start(directory / "redis.sock")
    try:
        with (
            celery_broker(f"redis+socket://{directory / 'redis.sock'}"),
            TestCase.captureOnCommitCallbacks(execute=True),
        ):
            traces = [_native(seeds, 900 + i) for i in range(5)]
            response = client.post("/api/v1/traces", json.dumps({"traces": traces}),
                                   content_type="application/json", headers=headers)  # fmt: skip
            assert response.status_code == 200
        store = redis.Redis(unix_socket_path=str(directory / "redis.sock"))
        held: list[bytes] = []
        for key in store.keys("*"):
            kind = store.type(key)
            if kind == b"list":
                held += store.lrange(key, 0, -1)
            elif kind == b"string":
                held.append(store.get(key) or b"")
            elif kind == b"hash":
                held += list(store.hgetall(key).values())
        assert held, "nothing was queued: the check would be empty"
        text = ""
        for item in held:
            text += item.decode("utf-8", "replace")
            # kombu's envelope carries the task's body in base64
            with contextlib.suppress(ValueError, KeyError, TypeError):
                text += base64.b64decode(json.loads(item)["body"]).decode("utf-8", "replace")
        queued = [(kind, value) for kind, value in seeds.values if value in text]
        assert queued == [], f"{len(queued)} in the broker: {queued[:5]}"
    finally:
        broker.kill()
        broker.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _model_requests_hold_none(tenant, seeds: Seeds, settings) -> None:  # type: ignore[no-untyped-def]
    """The failed runs diagnosed by a model (the real SDK against a local fake)."""
    from failures.mining import incidents_mine
    from tests.skills.fake_anthropic import FakeAnthropic

    server = FakeAnthropic()
    settings.ANTHROPIC_API_KEY = "sk-test-not-real"
    settings.ANTHROPIC_BASE_URL = server.url
    settings.HIVEMIND_LLM_MAX_RETRIES = 0
    settings.HIVEMIND_LLM_TIMEOUT = 2.0
    try:
        ids = list(Trace.objects.filter(workspace=tenant.workspace, status="failed")
                   .values_list("pk", flat=True)[:40])  # fmt: skip
        incidents_mine(workspace_id=tenant.workspace.pk, trace_ids=ids)
    finally:
        server.close()
        settings.ANTHROPIC_API_KEY = ""
    sent = json.dumps([r["body"] for r in server.requests])
    assert server.requests, "no request reached the model: the check would be empty"
    leaked = [(kind, value) for kind, value in seeds.values if value in sent]
    assert leaked == [], f"{len(leaked)} sent to the model: {leaked[:5]}"


@pytest.mark.django_db(transaction=True)  # committed rows, so pg_dump sees them
def test_no_raw_pii_anywhere_in_the_database(client, tenant, settings, console):
    settings.HIVEMIND_MIN_MODE_SIZE = 3
    settings.HIVEMIND_DISTILL_MIN_INCIDENTS = 3
    seeds = Seeds()
    headers = tenant.api_headers()
    with TestCase.captureOnCommitCallbacks(execute=True):  # the worker's stages, inline
        for batch in range(11):
            agent = f"agent-{seeds.one(identifier=True)}"
            traces = [_native(seeds, batch * 10 + i, agent if i < 8 else "") for i in range(10)]
            traces += [_succeeded(seeds, batch * 10 + i, agent) for i in range(10)]
            traces += [_rate_limited(seeds, batch * 10 + i, agent, i % 2 == 0) for i in range(8)]
            response = client.post("/api/v1/traces", json.dumps({"traces": traces}),
                                   content_type="application/json", headers=headers)  # fmt: skip
            assert response.status_code == 200, response.content[:500]
            for trace in traces[:3]:
                response = client.post(
                    f"/api/v1/traces/{trace['external_id']}/outcome",
                    json.dumps({"status": "failed", "comment": seeds.text(),
                                "scores": [{"name": f"score-{seeds.one(identifier=True)}",
                                            "value": 0, "comment": seeds.text(2)}]}),
                    content_type="application/json", headers=headers,
                )  # fmt: skip
                assert response.status_code == 200, response.content[:300]
        for _ in range(6):
            response = client.post("/v1/traces", json.dumps(_otlp_spans(seeds)),
                                   content_type="application/json", headers=headers)  # fmt: skip
            assert response.status_code == 200, response.content[:300]
            response = client.post("/v1/traces", _protobuf(seeds),
                                   content_type="application/x-protobuf", headers=headers)  # fmt: skip
            assert response.status_code == 200
        for _ in range(6):
            for payload in _hooks(seeds):
                response = client.post("/api/v1/hooks/claude-code", json.dumps(payload),
                                       content_type="application/json", headers=headers)  # fmt: skip
                assert response.status_code == 200, response.content[:300]
    _close_the_loop(tenant)
    from failures.models import FailureMode

    assert FailureMode.objects.filter(workspace=tenant.workspace).exists()
    assert Skill.objects.filter(workspace=tenant.workspace, status="published").exists()
    for _ in range(10):
        client.get("/api/v1/skills", headers={**headers,
                   "X-Hivemind-Agent": f"agent-{seeds.one(identifier=True)}",
                   "X-Hivemind-Session": f"s-{seeds.one(identifier=True)}"})  # fmt: skip
        response = client.get("/.well-known/agent-skills/index.json", headers={**headers,
                              "X-Hivemind-Agent": f"agent-{seeds.one(identifier=True)}",
                              "X-Hivemind-Session": f"s-{seeds.one(identifier=True)}"})  # fmt: skip
        assert response.status_code == 200
    skill_name = Skill.objects.filter(workspace=tenant.workspace, status="published")[0].name
    session = Trace.objects.filter(workspace=tenant.workspace).exclude(session_id="")[0]
    for _ in range(10):
        for tool, arguments in (
            ("list_skills", {"task": seeds.text(2), "session_id": f"s-{seeds.one(identifier=True)}"}),
            ("read_skill", {"name": skill_name, "session_id": f"s-{seeds.one(identifier=True)}"}),
            ("search_failures", {"query": seeds.text(2)}),
            ("report_outcome", {"session_id": session.session_id, "status": "failed",
                                "comment": seeds.text(2)}),
        ):  # fmt: skip
            answer = _mcp(client, headers, tool, arguments)
            assert "result" in answer and not answer["result"].get("isError"), answer
    # Log lines: a route that does not exist, with values in its path.
    for _ in range(5):
        client.get(f"/api/v1/traces/{seeds.one(identifier=True)}/nowhere", headers=headers)
        client.get(f"/w/{tenant.workspace.slug}/traces/{seeds.one(identifier=True)}/")
    _broker_holds_none(client, headers, seeds)
    _model_requests_hold_none(tenant, seeds, settings)
    log = console.getvalue()
    assert "Not Found" in log  # the log was written
    in_log = [(kind, value) for kind, value in seeds.values if value in log]
    assert in_log == [], f"{len(in_log)} in the log: {in_log[:5]}"
    dump = _dump()
    assert "payments.refund" in dump and "[EMAIL" in dump  # the dump holds the data
    survivors = [(kind, value) for kind, value in seeds.values if value in dump]
    assert len(seeds.values) >= 5000, len(seeds.values)
    where = [dump[max(0, dump.index(v) - 200) : dump.index(v) + 60] for _, v in survivors[:3]]
    assert survivors == [], (
        f"{len(survivors)} of {len(seeds.values)} survived: {survivors[:20]}; in: {where}"
    )


def _close_the_loop(tenant) -> None:  # type: ignore[no-untyped-def]
    from failures.embedding import incidents_embed
    from failures.services import failure_modes_recluster
    from skills import review
    from skills.models import Skill
    from skills.services import distill_due, distillation_run

    incidents_embed(workspace_id=tenant.workspace.pk)
    failure_modes_recluster(workspace_id=tenant.workspace.pk)
    for job in distill_due(workspace_id=tenant.workspace.pk):
        distillation_run(job_id=job.pk)
    for skill in Skill.objects.filter(workspace=tenant.workspace):
        if skill.latest_version is not None:
            review.skill_approve(skill=skill, number=skill.latest_version.number, actor=tenant.lead)
