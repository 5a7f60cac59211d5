"""The published set: what agents get from `GET /api/v1/skills`.

Every review transition that can change which skill versions are published
calls `published_set_refresh` inside its transaction, so the set, its strong
ETag and the serialised first page change atomically with the decision. The
list endpoint then answers from one row loaded with the API key (no per-poll
scan of skills), and `If-None-Match` compares against the stored ETag.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from ninja.responses import NinjaJSONEncoder

from workspaces.models import ApiKey
from workspaces.services import identifier_redact

from .models import PublishedSet, Skill, SkillStatus, Trial
from .schemas import SkillOut
from .selectors import published_skill_list
from .trials import HOLDOUT, arm_for


def page_size() -> int:
    from ninja.conf import settings as ninja_settings

    return int(ninja_settings.PAGINATION_PER_PAGE)


def _rows(workspace_id: int) -> list[tuple[str, int, datetime, str]]:
    return [
        (p.skill.name, p.version.number, p.skill.updated_at, p.version.description)
        for p in published_skill_list(workspace_id=workspace_id, with_body=False)
    ]


def etag_from_rows(rows: list[tuple[Any, ...]]) -> str:
    """Strong ETag over the published set: names, versions and update times."""
    digest = hashlib.sha256()
    for name, number, updated_at, *_ in rows:
        digest.update(f"{name}@{number}@{updated_at.isoformat()}\n".encode())
    return f'"{digest.hexdigest()[:32]}"'


@transaction.atomic
def published_set_refresh(*, workspace_id: int) -> PublishedSet:
    """Recompute the set from the skills table (idempotent)."""
    rows = _rows(workspace_id)
    base = settings.HIVEMIND_PUBLIC_URL.rstrip("/") + "/api/v1/skills/"
    items = [
        SkillOut(name=name, version=number, description=description, updated_at=updated,
                 url=base + name, score=None).model_dump()
        for name, number, updated, description in rows
    ]  # fmt: skip
    # Serialised by ninja's own encoder, so the stored page is byte-for-byte what
    # the view would render (e.g. datetimes to the millisecond).
    first_page = json.dumps({"items": items[: page_size()], "count": len(items)},
                            cls=NinjaJSONEncoder)  # fmt: skip
    items = json.loads(json.dumps(items, cls=NinjaJSONEncoder))
    published, _ = PublishedSet.objects.update_or_create(
        workspace_id=workspace_id,
        defaults={
            "etag": etag_from_rows(rows),
            "items": items,
            "first_page": first_page,
            "refs": [f"{name}@{number}" for name, number, *_ in rows],
            "trials": _trials(workspace_id),
        },
    )
    return published


def _trials(workspace_id: int) -> list[dict[str, Any]]:
    """The published skills served to a trial's treated arm only."""
    skills = Skill.objects.filter(workspace_id=workspace_id, status=SkillStatus.PUBLISHED,
                                  rollout="trial").exclude(published_version=None)  # fmt: skip
    running = {t.skill_id: t for t in Trial.objects.filter(skill__in=skills).order_by("started_at")}
    return [
        {"name": s.name, "skill_id": s.pk, "version_id": s.published_version_id,
         "trial_id": running[s.pk].pk if s.pk in running else None,
         "holdout": running[s.pk].holdout_share if s.pk in running else 0.5}
        for s in skills.order_by("name")
    ]  # fmt: skip


@dataclass(frozen=True)
class SessionSet:
    """What one session is served when skills are on trial."""

    withheld: frozenset[str]  # names this session does not get
    unassigned: bool  # no session id: skills on trial are withheld, nothing recorded


def session_set(*, workspace_id: int, session_id: str, trials: list[dict[str, Any]]) -> SessionSet:
    """Each skill on trial is served to this session or not by skills.trials.arm_for;
    the assignment is recorded once per (trial, session). Without a session id the
    session cannot be measured: skills on trial are withheld (docs/TRIALS.md)."""
    if not trials:
        return SessionSet(frozenset(), False)
    if not session_id:
        return SessionSet(frozenset(t["name"] for t in trials), True)
    withheld, rows = set(), []
    for t in trials:
        arm = arm_for(skill_id=t["skill_id"], session_id=session_id, holdout_share=t["holdout"])
        if arm == HOLDOUT:
            withheld.add(t["name"])
        if t["trial_id"] is not None:
            rows.append((t["trial_id"], workspace_id, session_id[:200], arm, t["version_id"]))
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO skills_trialassignment (trial_id, workspace_id, session_id, arm,"
                " version_id, created_at) VALUES (%s, %s, %s, %s, %s, now())"
                " ON CONFLICT (trial_id, session_id) DO NOTHING",
                rows,
            )
    return SessionSet(frozenset(withheld), False)


def session_of(request: HttpRequest, api_key: ApiKey) -> str:
    """The session id a request names (X-Hivemind-Session), as the fetch log stores it."""
    return session_id_stored(api_key=api_key, raw=request.headers.get("X-Hivemind-Session", ""))


def session_id_stored(*, api_key: ApiKey, raw: str) -> str:
    """A session id a client sent (header or MCP argument) as it is stored and hashed
    into trial arms: redacted by the workspace's policy, custom patterns included."""
    return identifier_redact(workspace_id=api_key.workspace_id, value=raw[:1000])[:200]


def published_set_get(*, workspace_id: int) -> PublishedSet:
    published = PublishedSet.objects.filter(workspace_id=workspace_id).first()
    return published or published_set_refresh(workspace_id=workspace_id)


@dataclass(frozen=True)
class Poll:
    """What one skill-list poll needs: the key (to verify) and the set it would get."""

    api_key: ApiKey | None
    etag: str | None
    first_page: str
    refs_json: str
    on_trial: bool = False


_POLL_SQL = """
    SELECT k.id, k.workspace_id, k.prefix, k.secret_hash, k.scopes, k.last_used_at, k.revoked_at,
           k.expires_at, p.etag, p.first_page, p.refs::text, p.trials <> '[]'::jsonb
    FROM workspaces_apikey k
    LEFT JOIN skills_publishedset p ON p.workspace_id = k.workspace_id
    WHERE k.prefix = %s
"""


def poll_lookup(*, prefix: str) -> Poll:
    """The key with this prefix and its workspace's published set, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(_POLL_SQL, [prefix])
        row = cursor.fetchone()
    if row is None:
        return Poll(None, None, "", "[]")
    key_id, workspace_id, prefix, secret_hash, scopes, last_used_at, revoked_at = row[:7]
    api_key = ApiKey(
        id=key_id, workspace_id=workspace_id, prefix=prefix, secret_hash=secret_hash,
        scopes=scopes, last_used_at=last_used_at, revoked_at=revoked_at, expires_at=row[7],
    )  # fmt: skip
    return Poll(api_key, row[8], row[9] or "", row[10] or "[]", bool(row[11]))


def fetch_log_for_request(
    *, request: HttpRequest, api_key: ApiKey, endpoint: str, refs_json: str
) -> None:
    """Log a fetch with the agent and session the request names (headers
    X-Hivemind-Agent / X-Hivemind-Session): the one way fetches are logged."""
    agent = agent_header_stored(request=request, api_key=api_key)
    session = session_of(request, api_key)
    fetch_log_record(
        api_key=api_key, agent=agent, session_id=session, endpoint=endpoint, refs_json=refs_json
    )


def agent_header_stored(*, request: HttpRequest, api_key: ApiKey) -> str:
    """The X-Hivemind-Agent header as stored: redacted by the workspace's policy."""
    raw = request.headers.get("X-Hivemind-Agent", "")[:1000]
    return identifier_redact(workspace_id=api_key.workspace_id, value=raw)[:200]


def fetch_log_record(
    *, api_key: ApiKey, agent: str, session_id: str, endpoint: str, refs_json: str
) -> None:
    """Record which skills a key fetched, without waiting for the WAL flush.

    Agents poll on every run; losing the last fraction of a second of fetch logs
    in a crash is an acceptable price for not paying an fsync per poll. Outside
    a transaction the whole write is one round trip.
    """
    params: list[Any] = [api_key.workspace_id, api_key.pk, agent[:200], session_id[:200], endpoint,
              refs_json]  # fmt: skip
    insert = (
        "INSERT INTO skills_fetchlog (workspace_id, api_key_id, agent, session_id, endpoint,"
        " skills, created_at) VALUES (%s, %s, %s, %s, %s, %s::jsonb, now())"
    )
    with connection.cursor() as cursor:
        if connection.get_autocommit() and not connection.in_atomic_block:
            cursor.execute(f"BEGIN; SET LOCAL synchronous_commit = off; {insert}; COMMIT", params)
        else:
            cursor.execute(insert, params)
