"""Addresses users have logged in from: the login throttle trusts them (see
`workspaces.views.LoginView`). Per user, not per workspace; addresses are stored
hashed."""

from __future__ import annotations

import hashlib

from django.contrib.auth.models import User
from django.utils import timezone

from .models import KnownAddress


def login_address_hash(address: str) -> str:
    """How a login address is stored (never in the clear)."""
    return hashlib.sha256(f"login-address:{address}".encode()).hexdigest()


def login_address_known(*, username: str, address: str) -> bool:
    """Has the user with this username logged in from this address before?"""
    return KnownAddress.objects.filter(
        user__username__iexact=username, address_hash=login_address_hash(address)
    ).exists()


def login_address_remember(*, user: User, address: str) -> None:
    """Record that `user` logged in from `address`."""
    KnownAddress.objects.update_or_create(
        user=user, address_hash=login_address_hash(address),
        defaults={"last_login_at": timezone.now()},
    )  # fmt: skip
