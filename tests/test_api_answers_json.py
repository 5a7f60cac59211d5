"""Every API route answers JSON, never an HTML page, and never a 5xx, to bad input.

The routes are read from the API's own OpenAPI document (so a new endpoint is
swept without editing this test) plus the routes outside it (OTLP `/v1/traces`
and `/v1/logs`, and the Claude Code hook endpoint, if not documented). Each gets
every method it serves, with each bad input below, authenticated and not.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from hivemind_web.api import api

pytestmark = pytest.mark.django_db

BAD_BODIES: list[tuple[str, bytes | str]] = [
    ("application/json", ""),
    ("application/json", "{"),
    ("application/json", "null"),
    ("application/json", "[1, 2]"),
    ("application/json", '{"a": "\\u0000", "b": 1e999, "c": NaN}'),
    ("application/json", '{"a": ' * 700 + "1" + "}" * 700),
    ("application/json", b"\xff\xfe\x00garbage"),
    ("text/plain", "not json at all"),
    ("application/x-protobuf", b"\x0a\xff\xff\xff\xff\x0f"),
    ("multipart/form-data; boundary=x", "--x\r\nbroken"),
]
PATH_VALUES = ["x", "%00", "..%2F..%2Fetc", "9" * 40, "a" * 300]


def _routes() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    routes = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    routes.add(("POST", "/v1/traces"))
    routes.add(("POST", "/v1/logs"))
    routes.add(("POST", "/v1/metrics"))
    return sorted(routes)


ROUTES = _routes()


def _concrete(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _assert_json(response, what: str, protobuf: bool = False) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, f"{what}: {response.status_code}"
    content_type = response.get("Content-Type", "")
    # A success may be a file (skills.zip); an error is JSON, or for an OTLP
    # protobuf request the protobuf Status message the OTLP spec requires.
    if response.status_code >= 400:
        expected = (
            ("application/json", "application/x-protobuf") if protobuf else ("application/json",)
        )
        assert content_type.startswith(expected), f"{what}: {response.status_code} {content_type}"
    assert not content_type.startswith("text/html"), f"{what}: {response.status_code} HTML"


def test_the_sweep_covers_the_api():
    paths = {path for _, path in ROUTES}
    assert {"/api/v1/traces", "/api/v1/skills", "/v1/traces", "/v1/logs", "/v1/metrics"} <= paths
    assert len(ROUTES) >= 12


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_route_answers_json_to_bad_input(tenant, method, path):
    client = Client(raise_request_exception=False)
    for authenticated in (True, False):
        headers = {"Host": "127.0.0.1"}
        if authenticated:
            headers.update(tenant.api_headers())
        for value in PATH_VALUES:
            url = _concrete(path, value)
            for query in ("", "?q=%00&limit=-1&since=notadate&agent=%00"):
                if method == "GET" or method == "DELETE":
                    response = client.generic(method, url + query, headers=headers)
                    _assert_json(response, f"{method} {url}{query} auth={authenticated}")
                    continue
                for content_type, body in BAD_BODIES:
                    response = client.generic(
                        method, url + query, body, content_type=content_type, headers=headers
                    )
                    _assert_json(
                        response,
                        f"{method} {url}{query} {content_type} {str(body)[:30]!r} "
                        f"auth={authenticated}",
                        protobuf=path in ("/v1/traces", "/v1/logs", "/v1/metrics")
                        and ("protobuf" in content_type or not body),
                    )
            if not authenticated:
                break  # one path value is enough to see the 401


def test_unknown_paths_get_json_under_the_api_and_a_page_elsewhere(client):
    response = client.get("/api/v1/no-such-route")
    assert response.status_code == 404 and response.json()["detail"].startswith("No such API")
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and b"There is nothing at this address" in response.content


def test_a_form_body_to_the_api_is_a_415_that_says_what_to_send(client, tenant):
    response = client.post("/api/v1/traces", {"traces": "x"}, headers=tenant.api_headers())
    assert response.status_code == 415 and "application/json" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/v1/traces"),
        ("delete", "/api/v1/skills"),
        ("get", "/v1/traces"),
        ("get", "/mcp"),
        ("delete", "/mcp"),
        ("patch", "/.well-known/agent-skills/index.json"),
        ("post", "/healthz"),
    ],
)
def test_a_wrong_method_is_answered_in_json(method, path):
    response = getattr(Client(), method)(path)
    assert response.status_code == 405, (method, path)
    assert response["Content-Type"].startswith("application/json"), (method, path)
    assert "detail" in response.json() or "error" in response.json()


def test_mcp_refuses_what_is_not_a_json_rpc_message_in_json(tenant):
    headers = tenant.api_headers()
    multipart = Client().post("/mcp", "--x\r\nbroken", headers=headers,
                              content_type="multipart/form-data; boundary=x")  # fmt: skip
    assert multipart.status_code == 415 and multipart.json()["error"]["code"] == -32700
    anonymous = Client().post("/mcp", "{}", content_type="application/json")
    assert anonymous.status_code == 401 and anonymous["Content-Type"] == "application/json"


def test_a_body_over_the_limit_is_413_json_on_mcp(tenant, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    big = Client().post("/mcp", "{" + " " * 500 + "}", content_type="application/json",
                        headers=tenant.api_headers())  # fmt: skip
    assert big.status_code == 413 and big["Content-Type"] == "application/json"
