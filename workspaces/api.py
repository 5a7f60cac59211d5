from __future__ import annotations

from ninja import Router

from .auth import ApiKeyAuth
from .requests import ApiRequest
from .schemas import ErrorOut, WhoAmIOut

router = Router(tags=["workspace"])


@router.get(
    "/whoami",
    auth=ApiKeyAuth(),
    response={200: WhoAmIOut, 401: ErrorOut},
    summary="Which workspace and scopes this API key has",
)
def whoami(request: ApiRequest) -> WhoAmIOut:
    """Lets an agent check its key before sending anything."""
    key = request.auth
    return WhoAmIOut(
        workspace=key.workspace.slug,
        workspace_name=key.workspace.name,
        key_name=key.name,
        key_prefix=key.display_prefix,
        scopes=key.scopes,
        created_at=key.created_at,
    )
