"""A signal many successful runs also meet is not a cause: an error met along the way
names a failure only if most of the agent's runs with it failed; an error the run
ended on still does. A test runner's verdict in a tool's output is read as an error."""

from __future__ import annotations

import pytest

from failures.diagnosis.facts import silent_error
from failures.diagnosis.offline import MIN_FAILURE_SHARE
from failures.models import Incident, IncidentKind, TraceAnalysis
from tests.factories import ingest, trace_payload

pytestmark = pytest.mark.django_db

ERROR = "Error executing query: Unknown column 'kind' in 'field list'"


def _run(i: int, status: str, *, error: bool, ended: bool = False) -> dict:
    steps: list[dict] = [{"kind": "user_prompt", "input": f"count the rows of table t{i}"}]
    if error and not ended:
        steps.append({"kind": "tool_call", "name": "sql", "input": {"command": "select kind"},
                      "output": ERROR})  # fmt: skip
    steps.append({"kind": "tool_call", "name": "sql", "input": {"command": "select count"},
                  "output": "[(3,)]"})  # fmt: skip
    if error and ended:
        steps.append({"kind": "tool_call", "name": "sql", "input": {"command": "select kind"},
                      "output": ERROR})  # fmt: skip
    return trace_payload(f"{status}-{i}", status=status, agent="sqler",
                         task=f"count the rows of table t{i}", steps=steps)  # fmt: skip


def _workspace_with_a_common_error(workspace) -> None:  # type: ignore[no-untyped-def]
    # 60 successes (20 met the error and went on), 40 failures (30 met it): runs with
    # the error fail 60% of the time against 40% of all runs, significant, yet the
    # 95% bound of that share is below MIN_FAILURE_SHARE.
    runs = [_run(i, "succeeded", error=i < 20) for i in range(60)]
    runs += [_run(100 + i, "failed", error=i < 30) for i in range(39)]
    runs.append(_run(200, "failed", error=True, ended=True))
    ingest(workspace, runs)


def test_an_error_most_successful_runs_also_recover_from_is_no_cause(tenant):
    assert MIN_FAILURE_SHARE > 0.5
    _workspace_with_a_common_error(tenant.workspace)
    midway = TraceAnalysis.objects.get(trace__external_id="failed-100")
    assert midway.state == "undiagnosed", list(
        Incident.objects.filter(trace=midway.trace).values_list("kind", "description")
    )
    assert not Incident.objects.filter(trace=midway.trace, kind=IncidentKind.DIAGNOSIS).exists()


def test_the_same_error_on_the_last_call_still_names_the_failure(tenant):
    _workspace_with_a_common_error(tenant.workspace)
    ended = Incident.objects.filter(trace__external_id="failed-200", kind=IncidentKind.DIAGNOSIS)
    assert ended.exists(), list(Incident.objects.filter(
        trace__external_id="failed-200").values_list("kind", "description"))  # fmt: skip
    assert "Unknown column" in ended.first().description  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("output", "is_error"),
    [
        ("Failed 3/3 Test Cases. Please try again.", True),
        ("===== 2 failed, 5 passed in 0.3s =====", True),
        ("Tests failed: test_forms.py::test_x", True),
        ("===== 0 failed, 3 passed in 0.1s =====", False),
        ("All 3 tests passed.", False),
    ],
)
def test_a_test_runners_verdict_is_read_as_an_error(output, is_error):
    assert (silent_error(output) is not None) is is_error
