from __future__ import annotations

from datetime import datetime

from ninja import Schema


class ErrorOut(Schema):
    detail: str | list | dict


class WhoAmIOut(Schema):
    workspace: str
    workspace_name: str
    key_name: str
    key_prefix: str
    scopes: list[str]
    created_at: datetime
