"""Every selector is scoped to a workspace; this fails when one is not.

Two checks: (1) statically, each public function in a selectors module takes a
workspace (and uses it) or an object that already belongs to one (a trace, mode,
skill, …); a new selector taking neither fails here until it is scoped or listed
as pure. (2) Behaviourally, every "get by id" selector refuses another
workspace's id.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from failures import selectors as failure_selectors
from failures.models import ClusterRun, FailureMode
from skills import selectors as skill_selectors
from skills.models import DistillationJob, Skill
from tests.factories import ingest, trace_payload
from traces import selectors as trace_selectors
from traces.models import Trace
from workspaces import selectors as workspace_selectors
from workspaces.errors import NotFound
from workspaces.models import ApiKey, Membership

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["workspaces/selectors.py", "traces/selectors.py", "failures/selectors.py",
           "failures/search.py", "skills/selectors.py", "metrics/selectors.py"]  # fmt: skip
# Parameters that carry the workspace with them (loaded through a scoped selector first).
SCOPED_OBJECTS = {"workspace", "workspace_id", "trace", "mode", "skill", "user", "trial"}
# Pure functions: no database access.
PURE = {"skill_md", "render_markdown", "parse_query", "verdict_words"}


def _public_functions(path: Path):  # type: ignore[no-untyped-def]
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            yield node


def test_every_selector_takes_and_uses_a_workspace_scope():
    problems = []
    for module in MODULES:
        for fn in _public_functions(ROOT / module):
            if fn.name in PURE:
                continue
            params = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
            scoped = params & SCOPED_OBJECTS
            if not scoped:
                problems.append(f"{module}:{fn.name} takes no workspace or scoped object")
                continue
            used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
            if not scoped & used:
                problems.append(f"{module}:{fn.name} takes {sorted(scoped)} but never uses it")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_get_by_id_selectors_refuse_another_workspaces_ids(tenant, other_tenant):
    ingest(workspace=tenant.workspace, items=[trace_payload("scoped-1")])
    trace = Trace.objects.get(external_id="scoped-1")
    # incident_count > 0: the list selector shows only modes that hold incidents.
    mode = FailureMode.objects.create(workspace=tenant.workspace, label="m", incident_count=1)
    run = ClusterRun.objects.create(workspace=tenant.workspace)
    skill = Skill.objects.create(workspace=tenant.workspace, name="scoped-skill")
    job = DistillationJob.objects.create(workspace=tenant.workspace, failure_mode=mode)
    key = ApiKey.objects.filter(workspace=tenant.workspace).first()
    member = Membership.objects.filter(workspace=tenant.workspace).first()
    cases = [
        (trace_selectors.trace_get, trace.pk),
        (failure_selectors.failure_mode_get, mode.pk),
        (failure_selectors.cluster_run_get, run.pk),
        (skill_selectors.skill_get, skill.pk),
        (skill_selectors.job_get, job.pk),
        (workspace_selectors.api_key_get, key.pk),
        (workspace_selectors.membership_get_by_pk, member.pk),
    ]
    for selector, pk in cases:
        assert selector(workspace=tenant.workspace, pk=pk).pk == pk, selector.__name__
        with pytest.raises(NotFound):
            selector(workspace=other_tenant.workspace, pk=pk)
    lists = [
        trace_selectors.trace_list, failure_selectors.failure_mode_list, skill_selectors.skill_list,
        workspace_selectors.api_key_list, workspace_selectors.audit_event_list,
    ]  # fmt: skip
    for selector in lists:
        mine = {o.pk for o in selector(workspace=tenant.workspace)}
        theirs = {o.pk for o in selector(workspace=other_tenant.workspace)}
        assert mine, f"{selector.__name__} shows the owner nothing: the check would be vacuous"
        assert not mine & theirs, selector.__name__
