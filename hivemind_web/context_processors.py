"""Template context that spans apps (the shell may import any app)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def review_queue(request: HttpRequest) -> dict[str, Any]:
    """How many proposed skills wait for review: the badge on the Skills link."""
    workspace = getattr(request, "workspace", None)
    if workspace is None:
        return {}
    from metrics.selectors import review_queue_count

    return {"review_queue": review_queue_count(workspace=workspace)}
