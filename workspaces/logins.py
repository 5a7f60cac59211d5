"""Browsers users have logged in from: the login throttle trusts them (see
`workspaces.views.ThrottledLoginMixin`).

A successful login leaves a signed, HTTP-only cookie holding a random device
token; its hash is stored against the user (in `KnownAddress.address_hash`,
which held login addresses before: an address is shared by everyone behind the
same NAT or proxy, a device token is not). Someone guessing a password
elsewhere, even from the same address, cannot lock the owner out of a browser
they have logged in from. Per user, not per workspace; tokens stored hashed.
"""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .models import KnownAddress

DEVICE_COOKIE = "hm_device"
DEVICE_SALT = "hivemind-login-device"
DEVICE_DAYS = 365


def login_device_hash(token: str) -> str:
    """How a device token is stored (never in the clear)."""
    return hashlib.sha256(f"login-device:{token}".encode()).hexdigest()


def login_device_token(request: HttpRequest) -> str:
    """The device token the request's signed cookie carries, or ""."""
    return str(request.get_signed_cookie(DEVICE_COOKIE, default="", salt=DEVICE_SALT) or "")


def login_device_known(*, username: str, token: str) -> bool:
    """Has the user with this username logged in from the browser holding `token`?"""
    if not token:
        return False
    return KnownAddress.objects.filter(
        user__username__iexact=username, address_hash=login_device_hash(token)
    ).exists()


def login_device_remember(*, user: User, request: HttpRequest, response: HttpResponse) -> None:
    """Record the browser `user` just logged in from, giving it a token if it has none."""
    from django.conf import settings

    token = login_device_token(request) or secrets.token_urlsafe(24)
    KnownAddress.objects.update_or_create(
        user=user, address_hash=login_device_hash(token),
        defaults={"last_login_at": timezone.now()},
    )  # fmt: skip
    response.set_signed_cookie(
        DEVICE_COOKIE, token, salt=DEVICE_SALT, max_age=DEVICE_DAYS * 86400, httponly=True,
        samesite="Lax", secure=settings.SESSION_COOKIE_SECURE,
    )  # fmt: skip


def client_key(request: HttpRequest) -> str:
    """A client's address as a rate-limit key holds it: hashed, not in the clear."""
    address = request.META.get("REMOTE_ADDR", "")
    return hashlib.sha256(f"client:{address}".encode()).hexdigest()[:24]
