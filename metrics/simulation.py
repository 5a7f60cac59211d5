"""A closed-loop simulation of the whole product (`manage.py simulate_loop`).

Simulated agents have latent failure modes: each agent works on one task type,
which calls one risky tool three times, and each call fails with that mode's
per-step error probability (a failed call is retried successfully with
probability RECOVERY, else the task fails). A skill whose SKILL.md names the
risky tool multiplies that mode's error probability by the mode's true `effect`
for sessions that fetched it (through the real skills API): one skill helps
(×0.15), one does nothing (×1), one hurts (×2.4). One agent also improves for a
reason that has nothing to do with skills: its unrelated failures (a wrong final
answer, no tool error) fade from 50% to none over the run.

Every round: each task is its own session; it fetches skills (`GET
/api/v1/skills` with `X-Hivemind-Session`, + each SKILL.md) and the agent posts
its traces (`POST /api/v1/traces`, with the skills they had in scope) through
the full Django stack → incidents are embedded and clustered → modes past the
threshold are distilled (offline distiller, or Claude with ANTHROPIC_API_KEY) →
a simulated lead approves each proposal *as a trial* (half the sessions held
out) through the review service (audited), except for the control modes, whose
proposals are rejected so they never get a skill → next round. At the end each
trial's estimate, interval and verdict are compared with the true effect.

The three modes that get skills fail with a busy or slow service's answer, which
a retried call can get past: their drafted instruction ("not done until a call
succeeds") can be backtested on runs it was not drafted from, as the drafting
gate requires before a lead sees a draft (skills/distill.py `require_passed`).
A precondition error ("column does not exist") cannot be backtested from calls,
so such a mode is held back, never proposed, and could not be trialled here.

With the shipped precision table a tool error a run ended on is only a weak lead
(failures/diagnosis/evidence_precision.json), so failed runs start undiagnosed
and no mode forms from errors alone. The simulated lead therefore takes the
loop's human step, as a lead does in Review runs and as the demo's seeded lead
does: after each round it labels up to LEAD_LABELS failed runs of each failing
tool it has not labelled yet, at the call the run ended on, with a sentence and
a fix (it reads the run, not the simulation's truth). Modes and drafts then rest
on those labels and on the runs they propagate to.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from failures import clustering
from failures.embedding import incidents_embed
from failures.labels import Author, label_save, review_queue
from failures.mining import incidents_mine
from failures.models import FailureMode, Incident, ModeStatus, RunLabel
from failures.services import failure_modes_recluster
from skills import review
from skills.models import JobState, Skill, SkillStatus
from skills.selectors import trial_current
from skills.services import distill_due, distillation_run
from skills.trials import HELPS, HURTS, NO_CHANGE
from traces.models import Trace
from workspaces.models import Role, Scope, Workspace
from workspaces.services import api_key_create, membership_set, workspace_create

from .selectors import TrialResult, trial_result
from .services import rollups_refresh_for_traces, skills_likeness_refresh, trials_refresh
from .stats import Rate

RECOVERY = 0.3
RISKY_CALLS = 3
IMPROVING_AGENT = 1  # the agent whose success improves for an unrelated reason
UNRELATED_FAILURE = 0.5  # its unrelated failure rate in round 1, fading to 0
# Failed runs the simulated lead labels per failing tool: five, the fewest a
# skill's instruction may rest on (skills/distill.py), as the demo's lead does.
LEAD_LABELS = 5


@dataclass(frozen=True)
class TrueMode:
    key: str
    tool: str
    error: Callable[[random.Random], str]
    p_error: float
    control: bool = False
    effect: float = 1.0  # a fetched skill multiplies p_error by this
    truth: str = ""  # helps / no_effect / hurts

    def recurrence(self, multiplier: float = 1.0) -> float:
        """True share of this mode's traces with at least one of its errors."""
        return 1 - (1 - self.p_error * multiplier) ** RISKY_CALLS

    def success(self, multiplier: float = 1.0) -> float:
        """True success rate of its tasks (without unrelated failures)."""
        return (1 - self.p_error * multiplier * (1 - RECOVERY)) ** RISKY_CALLS


MODES = [
    TrueMode("rate-limit", "stripe.refund",
             lambda r: f"429 Too Many Requests: rate limit exceeded, retry after {r.randint(1, 9)}s",
             0.26, effect=0.15, truth="helps"),
    TrueMode("db-busy", "sql.query",
             lambda r: f"503 Service Unavailable: the database is busy, try again in {r.randint(1, 9)}s",
             0.24, effect=1.0, truth="no_effect"),
    TrueMode("gateway-timeout", "browser.click",
             lambda r: f"504 Gateway Timeout: the page did not answer within {r.randint(10, 60)} s",
             0.25, effect=2.4, truth="hurts"),
    TrueMode("permission", "fs.write",
             lambda r: f"PermissionError: [Errno 13] Permission denied: '/etc/app/{r.randint(1, 99)}.conf'",
             0.25, control=True),
    TrueMode("timeout", "http.get",
             lambda r: f"ReadTimeout: GET https://api.example.com/v{r.randint(1, 3)}/items timed out after 30 s",
             0.24, control=True),
]  # fmt: skip


@dataclass
class Round:
    number: int
    overall: Rate
    treated: Rate
    control: Rate
    modes_found: int
    nmi: float | None
    published: int
    seconds: float
    by_mode: dict[str, Rate] = field(default_factory=dict)  # success per true mode
    # Modes whose skill was published this round: (to proposed, to published) in
    # seconds from the mode's first failure.
    cycles: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class Simulation:
    rounds: int = 6
    agents: int = 4
    traces_per_agent: int = 40
    seed: int = 7
    name: str = ""
    _workspace: Workspace | None = None
    history: list[Round] = field(default_factory=list)
    first_failure: dict[str, float] = field(default_factory=dict)
    cycle: dict[str, dict[str, float]] = field(default_factory=dict)
    judgements: list[Judgement] = field(default_factory=list)

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            raise RuntimeError("call setup() first")
        return self._workspace

    def setup(self) -> None:
        user_model = get_user_model()
        self.lead, _ = user_model.objects.get_or_create(username="simulated-lead")
        suffix = timezone.now().strftime("%Y%m%d%H%M%S")
        self._workspace = workspace_create(name=self.name or f"Simulation {suffix}",
                                          slug=f"sim-{suffix}", owner=self.lead)  # fmt: skip
        membership_set(workspace=self.workspace, user=self.lead, role=Role.LEAD, actor=None)
        self.key = api_key_create(workspace=self.workspace, name="simulated agents",
                                  scopes=[Scope.INGEST, Scope.SKILLS_READ], actor=None).secret  # fmt: skip
        self.client = Client(HTTP_HOST="127.0.0.1")
        self.rng = random.Random(self.seed)
        self.texts: dict[str, bytes] = {}

    # --- agents -------------------------------------------------------------------

    def _fetch_skills(self, agent: str, session: str) -> tuple[list[str], set[str]]:
        """(name@version in scope, tools the fetched SKILL.md texts address)."""
        headers = {"Authorization": f"Bearer {self.key}", "X-Hivemind-Agent": agent,
                   "X-Hivemind-Session": session}  # fmt: skip
        listing = self.client.get("/api/v1/skills", headers=headers).json()["items"]
        refs, tools = [], set()
        for item in listing:
            ref = f"{item['name']}@{item['version']}"
            if ref not in self.texts:  # an agent caches a version's text
                self.texts[ref] = self.client.get(
                    f"/api/v1/skills/{item['name']}", headers=headers
                ).content
            refs.append(ref)
            tools |= {m.tool for m in MODES if m.tool.encode() in self.texts[ref]}
        return refs, tools

    def _run_task(self, agent: str, index: int, round_no: int, mode: TrueMode,
                  tools_with_skill: set[str], refs: list[str], session: str) -> dict:  # fmt: skip
        rng = self.rng
        p_error = min(mode.p_error * (mode.effect if mode.tool in tools_with_skill else 1.0), 1.0)
        steps: list[dict[str, object]] = [
            {"kind": "user_prompt", "input": f"{mode.key} task #{index}"}
        ]
        failed = False
        for call in range(RISKY_CALLS):
            steps.append({"kind": "tool_call", "name": "notes.read", "output": "ok"})
            if rng.random() < p_error:
                steps.append({"kind": "tool_call", "name": mode.tool,
                              "input": {"call": call}, "error": mode.error(rng)})  # fmt: skip
                if rng.random() >= RECOVERY:
                    failed = True
                    break
            steps.append({"kind": "tool_call", "name": mode.tool, "input": {"call": call},
                          "output": "ok"})  # fmt: skip
        if not failed and agent == f"sim-agent-{IMPROVING_AGENT}":
            # Unrelated to any skill: a wrong final answer, no tool error; fades
            # linearly to nothing by the last round.
            fading = UNRELATED_FAILURE * (1 - (round_no - 1) / max(self.rounds - 1, 1))
            if rng.random() < fading:
                failed = True
                steps.append({"kind": "llm_call", "name": "answer",
                              "output": f"final answer for {mode.key} task #{index}"})  # fmt: skip
        # Sessions are assigned when they fetch; their traces start then.
        started = timezone.now() - timedelta(seconds=self.traces_per_agent - index)
        return {
            "external_id": f"r{round_no}-{agent}-{index}", "agent": agent, "session_id": session,
            "task": f"{mode.key}: job {index}", "status": "failed" if failed else "succeeded",
            "started_at": started.isoformat(), "skills_in_scope": refs, "steps": steps,
            "metadata": {"true_mode": mode.key},
        }  # fmt: skip

    def _agents_run(self, round_no: int) -> dict[str, list[bool]]:
        outcomes: dict[str, list[bool]] = defaultdict(list)
        for a in range(self.agents):
            agent = f"sim-agent-{a}"
            mode = MODES[a % len(MODES)]  # each agent works on one kind of task
            batch = []
            for i in range(self.traces_per_agent):
                session = f"r{round_no}-{agent}-{i}"  # one session per task
                refs, tools = self._fetch_skills(agent, session)
                trace = self._run_task(agent, i, round_no, mode, tools, refs, session)
                outcomes[mode.key].append(trace["status"] == "succeeded")
                if any(s.get("error") for s in trace["steps"]):
                    self.first_failure.setdefault(mode.key, time.time())
                batch.append(trace)
            response = self.client.post(
                "/api/v1/traces", json.dumps({"traces": batch}), content_type="application/json",
                headers={"Authorization": f"Bearer {self.key}"},
            )  # fmt: skip
            if response.status_code != 200:
                raise RuntimeError(
                    f"ingest refused the batch: {response.status_code} {response.content[:300]!r}"
                )
        return outcomes

    # --- the loop after ingest ------------------------------------------------------

    def _true_mode_of(self, failure_mode: FailureMode) -> str | None:
        tools = Counter(
            Incident.objects.filter(failure_mode=failure_mode).values_list("tool", flat=True)
        )
        if not tools:
            return None
        tool = tools.most_common(1)[0][0]
        return next((m.key for m in MODES if m.tool == tool), None)

    def _cluster_and_distill(self) -> None:
        # The stages the worker runs after ingest, run here in order (a simulation
        # inside one process); each is idempotent if the worker runs it too.
        trace_ids = list(
            Trace.objects.filter(workspace=self.workspace).values_list("pk", flat=True)
        )
        # force: earlier rounds are judged again against the grown baseline, as the
        # worker's sweep does once an agent's labelled runs have doubled.
        incidents_mine(workspace_id=self.workspace.pk, trace_ids=trace_ids, force=True)
        self._label()
        incidents_embed(workspace_id=self.workspace.pk, limit=100_000)
        failure_modes_recluster(workspace_id=self.workspace.pk)
        rollups_refresh_for_traces(trace_ids=trace_ids)
        for job in distill_due(workspace_id=self.workspace.pk):
            job.refresh_from_db()
            if job.state == JobState.QUEUED:  # no worker picked it up (inside a transaction)
                distillation_run(job_id=job.pk)

    def _label(self) -> None:
        """The lead works the review queue: of the failed runs nothing diagnosed, it
        reads each and labels the call it ended on (the last step with an error), up
        to LEAD_LABELS runs per tool. Runs the diagnosis explained are left alone."""
        done: Counter[str] = Counter()
        for label in RunLabel.objects.filter(workspace=self.workspace).select_related("trace"):
            step = label.trace.steps.filter(index=label.step_index).first()
            done[step.name if step else ""] += 1
        author = Author(user=self.lead)
        undiagnosed = review_queue(workspace=self.workspace).filter(best=None)  # type: ignore[misc]
        for trace in sorted((a.trace for a in undiagnosed), key=lambda t: t.pk):
            last = trace.steps.exclude(error="").order_by("-index").first()
            if last is None or done[last.name] >= LEAD_LABELS:
                continue
            what = last.error.split(":")[0].strip()
            label_save(
                workspace=self.workspace, trace=trace, step_index=last.index,
                category="tool_use.error_not_handled",
                sentence=f"`{last.name}` failed ({what}) and the run stopped there",
                fix=f"When `{last.name}` fails with {what}, call it again until it succeeds",
                author=author,
            )  # fmt: skip
            done[last.name] += 1

    def _review(self) -> None:
        for skill in Skill.objects.filter(workspace=self.workspace, status=SkillStatus.PROPOSED):
            version = skill.latest_version
            if version is None:
                continue
            mode_key = self._true_mode_of(skill.source_mode) if skill.source_mode else None
            true_mode = next((m for m in MODES if m.key == mode_key), None)
            if mode_key:
                self.cycle.setdefault(mode_key, {})["proposed"] = version.created_at.timestamp()
            if true_mode is None or true_mode.control:
                review.skill_reject(skill=skill, actor=self.lead,
                                    reason="Control group: this mode is left without a skill.")  # fmt: skip
                continue
            review.skill_approve(skill=skill, number=version.number, actor=self.lead,
                                 rollout="trial", holdout_share=0.5)  # fmt: skip
            self.cycle.setdefault(true_mode.key, {})["published"] = time.time()

    def _quality(self) -> tuple[int, float | None]:
        rows = list(
            Incident.objects.filter(workspace=self.workspace).values_list("tool", "failure_mode_id")
        )
        modes = FailureMode.objects.filter(workspace=self.workspace, incident_count__gt=0).exclude(
            status=ModeStatus.MERGED
        )
        labelled = [(t, m) for t, m in rows if m is not None]
        if not labelled:
            return modes.count(), None
        nmi, _ = clustering.nmi_ari([t for t, _ in labelled], [m for _, m in labelled])
        return modes.count(), nmi

    def run(self, report: Callable[[str], None] = print) -> list[Round]:
        self.setup()
        report(f"workspace {self.workspace.slug}: {len(MODES)} true modes "
               f"({sum(m.control for m in MODES)} control), {self.agents} agents × "
               f"{self.traces_per_agent} traces per round")  # fmt: skip
        for round_no in range(1, self.rounds + 1):
            started = time.perf_counter()
            already = {k for k, v in self.cycle.items() if "published" in v}
            outcomes = self._agents_run(round_no)
            self._cluster_and_distill()
            self._review()
            trials_refresh(workspace_id=self.workspace.pk)
            skills_likeness_refresh(workspace_id=self.workspace.pk)
            found, nmi = self._quality()
            treated = [ok for m in MODES if not m.control for ok in outcomes[m.key]]
            control = [ok for m in MODES if m.control for ok in outcomes[m.key]]
            every = treated + control
            result = Round(
                number=round_no, overall=Rate(sum(every), len(every)),
                treated=Rate(sum(treated), len(treated)), control=Rate(sum(control), len(control)),
                modes_found=found, nmi=nmi,
                published=Skill.objects.filter(workspace=self.workspace,
                                               status=SkillStatus.PUBLISHED).count(),
                seconds=time.perf_counter() - started,
                by_mode={m.key: Rate(sum(outcomes[m.key]), len(outcomes[m.key])) for m in MODES},
                cycles={k: (v["proposed"] - self.first_failure[k], v["published"] - self.first_failure[k])
                        for k, v in self.cycle.items() if "published" in v and k not in already},
            )  # fmt: skip
            self.history.append(result)
            report(format_round(result, len(MODES)))
        report(self.cycle_report())
        self.judgements = self.judge()
        for line in format_judgements(self.judgements):
            report(line)
        return self.history

    def judge(self) -> list[Judgement]:
        """Per true mode with a skill: its trial's estimate and verdict against the truth."""
        judgements = []
        for mode in MODES:
            if mode.control:
                continue
            skills = [s for s in Skill.objects.filter(workspace=self.workspace).exclude(source_mode=None)
                      if self._true_mode_of(s.source_mode) == mode.key]  # type: ignore[arg-type]  # fmt: skip
            trial = next((t for s in skills if (t := trial_current(skill=s))), None)
            result = trial_result(trial=trial) if trial else None
            judgements.append(Judgement(mode=mode, result=result))
        return judgements

    def cycle_report(self) -> str:
        lines = ["cycle time per mode (first failure → proposed skill → published):"]
        for mode in MODES:
            first = self.first_failure.get(mode.key)
            marks = self.cycle.get(mode.key, {})
            if first is None:
                lines.append(f"  {mode.key:15s} no failure seen")
            elif mode.control:
                lines.append(f"  {mode.key:15s} control: proposal rejected, no skill published")
            elif "published" in marks:
                lines.append(f"  {mode.key:15s} proposed after {marks['proposed'] - first:6.1f} s, "
                             f"published after {marks['published'] - first:6.1f} s")  # fmt: skip
            else:
                lines.append(f"  {mode.key:15s} not yet published")
        return "\n".join(lines)


@dataclass(frozen=True)
class Judgement:
    mode: TrueMode
    result: TrialResult | None

    @property
    def verdict(self) -> str:
        return self.result.verdict if self.result else "no trial"

    @property
    def right(self) -> bool:
        wanted = {"helps": HELPS, "hurts": HURTS, "no_effect": NO_CHANGE}[self.mode.truth]
        return self.verdict == wanted


def _pts(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}"


def format_judgements(judgements: list[Judgement]) -> list[str]:
    lines = ["skill trials (treated − held out; 95% always-valid intervals):"]
    for j in judgements:
        m = j.mode
        true_rec = (m.recurrence(m.effect) - m.recurrence()) * 100
        true_ok = (m.success(m.effect) - m.success()) * 100
        if j.result is None:
            lines.append(f"  {m.key:15s} true {m.truth}: no trial ran")
            continue
        rec, ok = j.result.recurrence, j.result.success
        rec_i = f"[{_pts(rec.interval[0])}, {_pts(rec.interval[1])}]" if rec.interval else "[–]"
        ok_i = f"[{_pts(ok.interval[0])}, {_pts(ok.interval[1])}]" if ok.interval else "[–]"
        estimated = (f"{_pts(rec.difference)}/100 {rec_i}" if j.result.recurrence_measured
                     else "not measured")  # fmt: skip
        if j.result.recurrence_by_likeness:
            estimated += " (runs like the labelled ones)"
        lines.append(
            f"  {m.key:15s} true {m.truth:9s} recurrence {true_rec:+.1f}/100, success {true_ok:+.1f} pts"
            f" | estimated recurrence {estimated}, success {_pts(ok.difference)} pts {ok_i}"
            f" | n={rec.treated[1]}/{rec.holdout[1]} | verdict {j.verdict} ({'right' if j.right else 'WRONG'})"
        )  # fmt: skip
    return lines


def result_line(judgements: list[Judgement]) -> str:
    by_truth = {j.mode.truth: j.verdict.replace(" ", "_") for j in judgements}
    right = sum(j.right for j in judgements)
    return (f"RESULT skills_judged_right={right}/{len(judgements)} helps={by_truth.get('helps')} "
            f"hurts={by_truth.get('hurts')} no_effect={by_truth.get('no_effect')}")  # fmt: skip


def _rate(rate: Rate) -> str:
    if not rate.n:
        return "   –  (n=0)"
    low, high = rate.interval  # type: ignore[misc]
    return f"{rate.value:5.1%} [{low:5.1%}, {high:5.1%}] n={rate.n:<4d}"


def format_round(r: Round, true_modes: int) -> str:
    nmi = f"{r.nmi:.2f}" if r.nmi is not None else "–"
    cycles = ", ".join(f"{k} {p:.1f}/{q:.1f} s" for k, (p, q) in sorted(r.cycles.items()))
    return (
        f"round {r.number}: success {_rate(r.overall)} | modes with a skill on trial (both arms) {_rate(r.treated)} | "
        f"control modes {_rate(r.control)} | modes found {r.modes_found}/{true_modes} "
        f"(NMI {nmi}) | skills published {r.published} | "
        f"cycle (first failure → proposed/published) {cycles or '–'} | {r.seconds:.1f} s"
    )
