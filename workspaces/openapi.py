"""Request bodies that API operations parse themselves, for the OpenAPI document.

The ingest endpoints read the raw body (to cap its size, gunzip it, and judge
each trace on its own), so ninja cannot see their body schema. They name it with
`body_schema` in `openapi_extra`, which registers the model here; the one
NinjaAPI (hivemind_web/api.py) adds every registered model to its components.
Kept in the lowest app so any app's API can use it without importing the shell.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

EXTRA_SCHEMAS: list[type[BaseModel]] = []


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as the JSON request body."""
    if model not in EXTRA_SCHEMAS:
        EXTRA_SCHEMAS.append(model)
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}
