"""Webhooks cannot be pointed at the server's own network (SSRF).

DNS is stubbed, and opening a connection fails the test unless it goes to a
listener the test started: a refused address must be refused before any
connection is attempted.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from skills import outbound
from skills.forms import WebhookForm

DNS = {
    "metadata.google.internal": "169.254.169.254",
    "localhost": "127.0.0.1",
    "hooks.example.com": "93.184.215.14",
    "rebind.example.com": "10.0.0.5",
    "nat.example.com": "100.64.1.2",
}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def resolve(host, port, **kwargs):  # type: ignore[no-untyped-def]
        address = DNS.get(host, host)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    opened: list[tuple] = []

    def refuse_to_connect(address, timeout=None):  # type: ignore[no-untyped-def]
        opened.append(address)
        raise AssertionError(f"a connection was opened to {address}")

    monkeypatch.setattr(outbound, "resolve", resolve)
    monkeypatch.setattr(outbound, "open_connection", refuse_to_connect)
    return opened


REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://127.0.0.1:6379/",
    "http://localhost:5432/",
    "http://[::1]/hook",
    "http://0.0.0.0:8000/",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://nat.example.com/hook",
    "http://[::ffff:127.0.0.1]/hook",
    # IPv6 forms that carry an internal IPv4 address.
    "http://[::127.0.0.1]/hook",  # IPv4-compatible
    "http://[64:ff9b::127.0.0.1]/hook",  # NAT64
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "http://[64:ff9b:1::a00:5]/hook",  # local-use NAT64 of 10.0.0.5
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[2002:a00:5::1]/hook",  # 6to4 of 10.0.0.5
    "http://[2001:0:a00:5::ffff:ffff]/hook",  # Teredo, server 10.0.0.5
    "http://[fe80::5efe:a00:5]/hook",  # ISATAP (link-local anyway)
    "http://[2001:db8::5efe:a00:5]/hook",  # ISATAP interface id of 10.0.0.5
    "ftp://hooks.example.com/hook",
    "file:///etc/passwd",
    "http://user:pw@hooks.example.com/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_targets_never_get_a_connection(url, no_network):
    with pytest.raises(outbound.Refused):
        outbound.post(url, b"{}", {}, timeout=1)
    assert no_network == []
    form = WebhookForm(data={"url": url, "secret": "s", "active": "on"})
    assert not form.is_valid() and "url" in form.errors


def test_a_public_host_is_accepted_and_the_checked_address_is_used(no_network):
    target = outbound.check_url("https://hooks.example.com/hivemind?x=1")
    assert (target.address, target.host, target.port, target.path) == (
        "93.184.215.14", "hooks.example.com", 443, "/hivemind?x=1")  # fmt: skip
    with pytest.raises(AssertionError, match="93.184.215.14"):
        outbound.post("https://hooks.example.com/hivemind", b"{}", {}, timeout=1)


def test_an_answer_that_turns_private_at_delivery_is_refused(no_network):
    """DNS rebinding: the check runs again at delivery, on the address connected to."""
    DNS["flip.example.com"] = "93.184.215.14"
    outbound.check_url("http://flip.example.com/")
    DNS["flip.example.com"] = "10.0.0.5"
    with pytest.raises(outbound.Refused):
        outbound.post("http://flip.example.com/", b"{}", {}, timeout=1)
    assert no_network == []


def test_allowed_internal_host_can_be_configured(settings):
    settings.HIVEMIND_WEBHOOK_ALLOWED_HOSTS = ["localhost"]
    assert outbound.check_url("http://localhost:9000/hook").address == "127.0.0.1"


def test_a_redirect_is_not_followed(settings, monkeypatch):
    hits: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def log_message(self, *args):  # type: ignore[no-untyped-def]
            pass

        def do_POST(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()

        do_GET = do_POST  # noqa: N815

    server = HTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.handle_request, daemon=True).start()
    settings.HIVEMIND_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # only the test's own listener
    monkeypatch.setattr(outbound, "open_connection", socket.create_connection)
    status = outbound.post(f"http://127.0.0.1:{server.server_address[1]}/hook", b"{}", {},
                           timeout=5)  # fmt: skip
    server.server_close()
    assert status == 302 and hits == ["/hook"]  # one request; the Location was not fetched


@pytest.mark.django_db
def test_delivery_to_a_refused_address_fails_with_a_reason_and_no_retry(tenant):
    from skills.models import WebhookDelivery, WebhookEndpoint
    from skills.webhooks import webhook_deliver

    endpoint = WebhookEndpoint.objects.create(workspace=tenant.workspace, secret="s",
                                              url="http://169.254.169.254/")  # fmt: skip
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="skill.published",
                                              payload={"skill": "x"})  # fmt: skip
    delivery = webhook_deliver(delivery_id=delivery.pk)  # returns: no DeliveryFailed, no retry
    assert delivery.state == "failed" and delivery.error.startswith("Refused:")


@pytest.mark.parametrize(
    "address", ["64:ff9b::5db8:d70e", "2002:5db8:d70e::1", "2606:4700:4700::1111"]
)
def test_ipv6_forms_of_public_addresses_are_accepted(address, no_network):
    # NAT64 and 6to4 of 93.184.215.14, and a plain public IPv6 address.
    assert outbound.check_url(f"https://[{address}]/hook").address == address


def test_every_embedded_form_is_found():
    import ipaddress

    def inner(text: str) -> set[str]:
        return {str(a) for a in outbound.embedded_ipv4(ipaddress.IPv6Address(text))}

    assert inner("::ffff:10.0.0.5") == {"10.0.0.5"}
    assert inner("::10.0.0.5") == {"10.0.0.5"}
    assert inner("64:ff9b::10.0.0.5") == {"10.0.0.5"}
    assert inner("2002:a00:5::") == {"10.0.0.5"}
    assert "10.0.0.5" in inner("2001:0:a00:5::ffff:ffff")
    assert inner("2606:4700:4700::1111") == set()
