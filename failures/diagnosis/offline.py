"""The offline diagnoser: which step of a failed run went wrong, without a model.

Three methods, each weighed against the agent's successful runs:

1. **Errors, flagged or silent** (`facts.py`), kept only when the error kind
   makes failure more likely for this agent (below).
2. **Signals weighed against successes** (statistical debugging, after Liblit
   et al., "Scalable Statistical Bug Isolation", PLDI 2005): for a signal P,
   Failure(P) is the share of the agent's runs with P that failed, Context(P)
   the share that failed among runs where P *could* have held (the tool was
   called, the run had a conversation). P is evidence only when the 95% Wilson
   lower bound of Failure(P) is above Context(P). A signal as common in
   successes as in failures therefore never becomes an incident; the share of
   successful runs that have it is kept beside every incident.
3. **Divergence from successful runs of similar tasks**: the nearest successful
   runs by task embedding that use the same tools; the incident points at the
   first call made without a tool that most of them called first, at a tool
   none of them called, or at where the run stopped without a tool most of
   them called.

Settings (module constants, chosen once for all data sets and not tuned to one;
bench/RESULTS.md shows them on each): Wilson z = 1.645 (one-sided 95%); a
baseline needs 3 successful runs; divergence needs 3 neighbours (of up to 10,
TF-IDF task similarity ≥ 0.2) and 70% of them agreeing; at most 3 incidents a trace.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from traces.errors import decisive_line, refused, unanswered

from .facts import ErrorEvent, ToolCall, TraceFacts, command_head, is_generic

Z = 1.645
MIN_SUCCESSES = 3
NEIGHBOURS = 10
MIN_NEIGHBOURS = 3
MIN_SIMILARITY = 0.2
AGREEMENT = 0.7
MAX_FINDINGS = 3
# A signal met along the way (an error the run went on from, a repeated call, ...)
# is a cause only if, at 95%, at least this share of the agent's runs with it
# failed: "more likely to fail than runs without it" alone let an error that 35%
# of runs with it fail (and most successful runs also meet) name the cause of
# every failed run it appeared in. Chosen on the tune half of InterCode (0.4-0.6
# scored 0.444-0.448 there); an error the run ended on is exempt (chosen there
# too: 0.376 without the exemption, 0.417 with it); bench/RESULTS.md, "Measurements
# behind the product's constants".
MIN_FAILURE_SHARE = 0.6
TRACE_LEVEL = -1  # a finding about the whole run (the step it happened at is not known)
_READ_LIKE = re.compile(
    r"get|find|list|search|check|read|lookup|look_up|view|show|fetch|describe|status|verify|"
    r"query|grep|glob|^ls$|^cat$|calculate|info|browse\b",
    re.I,
)


@dataclass
class Finding:
    step: int
    description: str
    category: str
    evidence: list[int]
    confidence: float
    tool: str = ""
    error_text: str = ""
    source: str = "offline"
    stats: dict[str, Any] = field(default_factory=dict)


def wilson_lower(successes: int, n: int, z: float = Z) -> float:
    if n == 0:
        return 0.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))


@dataclass
class RunRecord:
    """What a profile keeps of one labelled run."""

    failed: bool
    signals: frozenset[str]
    calls: int
    tools: tuple[str, ...] = ()


@dataclass
class Weight:
    signal: str
    failure_rate: float
    context_rate: float
    lower_bound: float
    runs_with: int
    also_in_successes: float
    successes: int

    @property
    def significant(self) -> bool:
        return self.runs_with > 0 and self.lower_bound > self.context_rate

    def as_stats(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "failure_rate": round(self.failure_rate, 3),
            "context_rate": round(self.context_rate, 3),
            "lower_bound": round(self.lower_bound, 3),
            "runs_with": self.runs_with,
            "also_in_successes": round(self.also_in_successes, 3),
            "successes": self.successes,
        }


class Profile:
    """An agent's labelled runs, for weighing a signal against its successes."""

    def __init__(self, runs: list[RunRecord]) -> None:
        self.runs = runs
        self._patterns: dict[tuple, list[int]] = {}
        self.failed = sum(r.failed for r in runs)
        self.succeeded = len(runs) - self.failed
        self.fail_with: Counter[str] = Counter()
        self.succeed_with: Counter[str] = Counter()
        for run in runs:
            (self.fail_with if run.failed else self.succeed_with).update(run.signals)
        lengths = sorted(r.calls for r in runs if not r.failed)
        self.success_lengths = lengths
        self.long_after = self.short_before = None
        if len(lengths) >= MIN_SUCCESSES:
            median = lengths[len(lengths) // 2]
            p90 = lengths[min(len(lengths) - 1, math.ceil(0.9 * len(lengths)) - 1)]
            p10 = lengths[max(0, math.floor(0.1 * len(lengths)))]
            self.median, self.p90 = median, p90
            self.long_after = max(p90, median + 2)
            self.short_before = min(p10, median // 2) if median >= 4 else None
        for run in runs:
            extra = self._length_signals(run.calls)
            (self.fail_with if run.failed else self.succeed_with).update(extra)

    def pattern_rate(
        self, key: tuple, holds: Any, site: Any, own: tuple[bool, list[str]] | None
    ) -> tuple[float, float]:
        """Failure rate of the runs where a tool pattern holds, and where it could have.

        Counted once per pattern (`key`) over all runs; the judged run (`own`, which
        is one of them) is taken out and counted again as a failure.
        """
        if key not in self._patterns:
            counts = [0, 0, 0, 0]  # failed with, runs with, failed at site, runs at site
            for run in self.runs:
                if site(run.tools):
                    counts[2] += run.failed
                    counts[3] += 1
                    if holds(run.tools):
                        counts[0] += run.failed
                        counts[1] += 1
            self._patterns[key] = counts
        failed_with, with_, failed_site, at_site = self._patterns[key]
        if own is not None:
            own_failed, own_tools = own[0], tuple(own[1])
            if site(own_tools):
                failed_site -= own_failed
                at_site -= 1
                if holds(own_tools):
                    failed_with -= own_failed
                    with_ -= 1
        # The judged run, as a failure where the pattern holds.
        return (failed_with + 1) / (with_ + 1), (failed_site + 1) / (at_site + 1)

    def _length_signals(self, calls: int) -> set[str]:
        found = set()
        if self.long_after is not None and calls > self.long_after:
            found.add("long_run")
        if self.short_before is not None and calls < self.short_before:
            found.add("short_run")
        return found

    def signals_of(self, facts: TraceFacts) -> set[str]:
        return facts.signals | self._length_signals(len(facts.calls))

    @property
    def has_baseline(self) -> bool:
        return self.succeeded >= MIN_SUCCESSES and self.failed >= 1

    def weigh(self, signal: str, site: str | None, own: tuple[bool, set[str]] | None) -> Weight:
        """Failure(P) against Context(P); `own` is left out (the run being judged)."""
        fail_p, succ_p = self.fail_with[signal], self.succeed_with[signal]
        if site is None:
            fail_s, succ_s = self.failed, self.succeeded
        else:
            fail_s, succ_s = self.fail_with[site], self.succeed_with[site]
        succeeded = self.succeeded
        if own is not None:
            own_failed, own_signals = own
            if own_failed:
                fail_p -= signal in own_signals
                fail_s -= site is None or site in own_signals
            else:
                succ_p -= signal in own_signals
                succ_s -= site is None or site in own_signals
                succeeded -= 1
            # Judged as a failure: the run itself counts as one failed run with P.
            fail_p += 1
            fail_s += 1
        n_p, n_s = fail_p + succ_p, fail_s + succ_s
        return Weight(
            signal=signal,
            failure_rate=fail_p / n_p if n_p else 0.0,
            context_rate=fail_s / n_s if n_s else 0.0,
            lower_bound=wilson_lower(fail_p, n_p),
            runs_with=n_p,
            also_in_successes=succ_p / succeeded if succeeded > 0 else 0.0,
            successes=succeeded,
        )


def _site(signal: str) -> str | None:
    if signal.startswith(("error:", "repeat:")):
        return "tool:" + signal.split(":", 2)[1]
    if signal == "user_negative":
        return "site:conversation"
    return None


def _first_line(text: str, limit: int = 140) -> str:
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    return line[:limit] + ("…" if len(line) > limit else "")


_WITH_DIGIT = re.compile(r"\b\w*\d\w*\b")


def task_words(task: str) -> str:
    """A task's text for comparing templates: its words without ids and numbers."""
    return _WITH_DIGIT.sub(" ", task[:2000])


@dataclass
class Neighbour:
    trace_id: int
    tools: list[str]
    task: str
    score: float = 0.0  # the task's similarity to the query's (cosine of TF-IDF vectors)


class TaskIndex:
    """Successful runs, searchable by how similar their task is to another's.

    Task vectors are TF-IDF over word unigrams and bigrams (hashed, sublinear tf,
    l2-normalised), fitted on the successful runs' tasks. Not the neural model
    used for incidents: it embeds 50–90 task texts a second on 2 cores
    (measured, bench/RESULTS.md), which alone would spend the 10,000-trace
    budget; these vectors take well under a second for 10,000 tasks and rank
    the runs of the same task template first, which is what divergence needs.

    Words with a digit in them (ids, order numbers, dates, user names like
    `mia_li_3668`) are left out: each is rare, so its weight grows with the pool
    until two runs of one template ("change reservation R105", "… R012") fell
    below MIN_SIMILARITY once an agent had ~40 successful runs.
    """

    def __init__(self, pool: list[Neighbour]) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

        self.pool = pool
        self.tool_sets = [set(n.tools) for n in pool]
        self.vectorizer = HashingVectorizer(
            n_features=2**20, ngram_range=(1, 2), alternate_sign=False, norm=None
        )
        self.tfidf = TfidfTransformer(sublinear_tf=True)
        self.matrix = None
        if pool:
            counts = self.vectorizer.transform([task_words(n.task) for n in pool])
            self.matrix = self.tfidf.fit_transform(counts).tocsr()

    def nearest(self, task: str, tools: set[str], exclude: int) -> list[Neighbour]:
        return self.nearest_many([(task, tools, exclude)]).get(exclude, [])

    def nearest_many(
        self, queries: list[tuple[str, set[str], int]], chunk: int = 256
    ) -> dict[int, list[Neighbour]]:
        """Neighbours for many runs (task, tools, trace id), scored a chunk at a time."""
        found: dict[int, list[Neighbour]] = {}
        queries = [q for q in queries if q[0].strip() and q[1]]
        if self.matrix is None or not queries:
            return found
        for start in range(0, len(queries), chunk):
            part = queries[start : start + chunk]
            vectors = self.tfidf.transform(
                self.vectorizer.transform([task_words(q[0]) for q in part])
            )
            scores = (vectors @ self.matrix.T).toarray()
            for (_, tools, exclude), row in zip(part, scores, strict=True):
                found[exclude] = self._pick(row, tools, exclude)
        return found

    def _pick(self, scores: np.ndarray, tools: set[str], exclude: int) -> list[Neighbour]:
        top = min(len(scores), 20 * NEIGHBOURS)
        candidates = np.argpartition(-scores, top - 1)[:top]
        found: list[Neighbour] = []
        for i in candidates[np.argsort(-scores[candidates])]:
            if scores[i] < MIN_SIMILARITY:
                break
            if self.pool[i].trace_id == exclude or not tools & self.tool_sets[i]:
                continue
            found.append(replace(self.pool[i], score=float(scores[i])))
            if len(found) == NEIGHBOURS:
                break
        return found


def divergence(
    calls: list[ToolCall],
    neighbours: list[Neighbour],
    profile: Profile,
    own: tuple[bool, list[str]] | None,
) -> list[Finding]:
    """Where the failed run left the path its nearest successful runs took.

    Each candidate is kept only if runs of this agent that show the same pattern
    fail more often than runs where it could have shown (the pattern is not as
    common in successes as in failures).
    """
    if len(neighbours) < MIN_NEIGHBOURS or not calls:
        return []

    def fails_more(key: tuple, holds: Any, site: Any) -> bool:
        rate, context = profile.pattern_rate(key, holds, site, own)
        return rate > context

    n = len(neighbours)
    found: list[Finding] = []
    called: set[str] = set()
    for call in calls:
        users = [nb for nb in neighbours if call.name in nb.tools]
        if len(users) >= MIN_NEIGHBOURS:
            before: Counter[str] = Counter()
            for nb in users:
                before.update(set(nb.tools[: nb.tools.index(call.name)]) - {call.name})
            for tool, count in before.most_common():
                if tool in called or count / len(users) < AGREEMENT:
                    continue
                name = call.name
                if not fails_more(
                    ("without-first", tool, name),
                    lambda ts, a=tool, t=name: t in ts and a not in ts[: ts.index(t)],
                    lambda ts, t=name: t in ts,
                ):
                    continue
                category = (
                    "process.acted_before_gathering"
                    if _READ_LIKE.search(tool)
                    else "process.skipped_check"
                )
                found.append(Finding(
                    step=call.step, category=category, confidence=round(count / len(users), 3),
                    description=(f"called `{call.name}` without `{tool}` first; {count} of "
                                 f"{len(users)} similar successful runs called `{tool}` before it"),
                    evidence=[call.step], tool=call.name,
                    stats={"method": "divergence", "agree": count, "neighbours": len(users),
                           "pattern": ["without-first", tool, name]},
                ))  # fmt: skip
                break
            if found:
                break
        if (
            not users
            and call.name not in called
            and fails_more(("called", call.name), lambda ts, t=call.name: t in ts, lambda ts: True)
        ):
            found.append(Finding(
                step=call.step, category="tool_use.wrong_tool", confidence=0.6,
                description=(f"called `{call.name}`, which none of the {n} most similar successful "
                             "runs called"),
                evidence=[call.step], tool=call.name,
                stats={"method": "divergence", "agree": 0, "neighbours": n,
                       "pattern": ["called", call.name]},
            ))  # fmt: skip
            break
        called.add(call.name)
    share = Counter(t for nb in neighbours for t in set(nb.tools))
    # Ties go to the tool the neighbours call earliest (the first thing skipped).
    first_at = {t: min(nb.tools.index(t) for nb in neighbours if t in nb.tools) for t in share}
    ordered = sorted(share.items(), key=lambda kv: (-kv[1], first_at[kv[0]], kv[0]))
    missing = [
        (t, c) for t, c in ordered
        if t not in called and c / n >= AGREEMENT
        and fails_more(("never", t), lambda ts, x=t: x not in ts, lambda ts: True)
    ]  # fmt: skip
    if missing and not found:
        tool, count = missing[0]
        step = _where_missing(tool, calls, neighbours)
        category = "process.skipped_check" if _READ_LIKE.search(tool) else "process.gave_up"
        found.append(Finding(
            step=step, category=category, confidence=round(count / n, 3),
            description=f"never called `{tool}`; {count} of {n} similar successful runs did",
            evidence=[c.step for c in calls[-2:]], tool=tool,
            stats={"method": "divergence", "agree": count, "neighbours": n,
                   "pattern": ["never", tool]},
        ))  # fmt: skip
    return found


def _where_missing(tool: str, calls: list[ToolCall], neighbours: list[Neighbour]) -> int:
    """The step after the call that usually comes just before `tool`, else the last call."""
    before: Counter[str] = Counter()
    for nb in neighbours:
        if tool in nb.tools and nb.tools.index(tool) > 0:
            before[nb.tools[nb.tools.index(tool) - 1]] += 1
    for previous, _ in before.most_common(1):
        for position, call in enumerate(calls):
            if call.name == previous:
                following = calls[position + 1] if position + 1 < len(calls) else call
                return following.step
    return calls[-1].step


def diagnose(
    facts: TraceFacts,
    profile: Profile,
    *,
    failed: bool,
    neighbours: list[Neighbour],
    own: tuple[bool, set[str]] | None = None,
) -> list[Finding]:
    """Findings for one run. A run that did not fail is judged only on its errors."""
    findings: list[Finding] = []
    baseline = profile.has_baseline
    signals = profile.signals_of(facts)
    weights: dict[str, Weight] = {}

    def weighed(signal: str, ended: bool = False) -> Weight | None:
        """The signal's weight if it makes failure more likely: against the runs where
        it could have held, or (when reaching that point already predicts failure,
        e.g. a tool only failing runs call) against all of the agent's runs; and,
        unless the run ended on it, if most runs with it fail (MIN_FAILURE_SHARE)."""
        if signal not in weights:
            weight = profile.weigh(signal, _site(signal), own)
            if not weight.significant and _site(signal) is not None:
                weight = profile.weigh(signal, None, own)
            weights[signal] = weight
        weight = weights[signal]
        floor = 0.0 if ended else MIN_FAILURE_SHARE
        return weight if weight.significant and weight.lower_bound >= floor else None

    by_kind: dict[str, list[ErrorEvent]] = {}
    for error in facts.errors:
        by_kind.setdefault(f"error:{error.tool}:{error.kind}", []).append(error)
    for signal, events in by_kind.items():
        first = events[0]
        ended = bool(facts.calls) and events[-1].step >= facts.calls[-1].step
        weight = weighed(signal, ended) if baseline else None
        if baseline and weight is None:
            # Not more likely to fail than runs without it, as far as a 95% bound
            # can tell; still kept when a tool flagged it and no successful run of
            # the agent ever had it (one occurrence cannot beat the bound).
            raw = weights[signal]
            if not (first.explicit and raw.also_in_successes == 0):
                continue
            weight = raw
        if not baseline and not first.explicit:
            continue  # nothing to weigh a silent error against
        # An error the run went on from is what the taxonomy calls an unhandled tool
        # error; nothing here shows the agent drew a wrong fact from it (it was
        # called "misread output" without evidence: a usage-policy refusal, a CI
        # check's "fail" line).
        category = first.category
        flagged = (
            "was refused" if refused(first.text)
            else "did not complete" if unanswered(first.text)
            else "failed" if first.explicit else "reported a failure it was not flagged with"
        )  # fmt: skip
        findings.append(Finding(
            step=first.step, category=category,
            confidence=round(weight.lower_bound, 3) if weight else 0.5,
            description=f"{_who(first.tool)} {flagged}: {telling_line(first.text)}",
            evidence=[e.step for e in events][:10], tool=first.tool, error_text=first.text,
            source="error" if first.explicit else "offline",
            stats={"method": "error", "ended": bool(ended) and facts.said_after_last_call <= 1,
                   **(weight.as_stats() if weight else {"baseline": False, "signal": signal})},
        ))  # fmt: skip
    if failed and facts.assumptions:
        findings += _assumed(facts, weighed("assumed") if baseline else None, weights)
    if not failed or not baseline:
        return _best(findings)

    for repeated, times in facts.repeats:
        weight = weighed(f"repeat:{repeated.name}")
        if weight:
            findings.append(Finding(
                step=repeated.step, category="process.looped",
                confidence=round(weight.lower_bound, 3),
                description=f"made the same `{repeated.name}` call {times} times: {repeated.command}",
                evidence=[c.step for c in facts.calls if c.key == repeated.key][:10],
                tool=repeated.name,
                stats={"method": "signal", **weight.as_stats()},
            ))  # fmt: skip
    for call in facts.handoffs[:1]:
        weight = weighed(f"handoff:{call.name}")
        if weight:
            findings.append(Finding(
                step=call.step, category="process.gave_up", confidence=round(weight.lower_bound, 3),
                description=(f"handed the task over with `{call.name}` after "
                             f"{facts.calls.index(call)} tool calls"),
                evidence=[call.step], tool=call.name, stats={"method": "signal", **weight.as_stats()},
            ))  # fmt: skip
    for step, text, after in facts.objections[:1]:
        weight = weighed("user_negative")
        if weight:
            findings.append(Finding(
                step=after.step, category="communication.misunderstood_request",
                confidence=round(weight.lower_bound, 3),
                description=f"the user objected after `{after.name}`: \"{_first_line(text, 100)}\"",
                evidence=[after.step, step], tool=after.name,
                stats={"method": "signal", **weight.as_stats()},
            ))  # fmt: skip
    if "long_run" in signals and (weight := weighed("long_run")) and profile.long_after is not None:
        over = facts.calls[min(profile.long_after, len(facts.calls) - 1)]
        last = facts.calls[-1]
        findings.append(Finding(
            step=over.step, category="process.looped", confidence=round(weight.lower_bound, 3),
            description=(f"kept going for {len(facts.calls)} tool calls (successful runs of this agent "
                         f"use {profile.median}, 9 in 10 at most {profile.p90}); last: "
                         f"`{last.name}` {last.command}"),
            evidence=[c.step for c in facts.calls[profile.long_after:]][:10], tool=last.name,
            stats={"method": "signal", **weight.as_stats()},
        ))  # fmt: skip
    # A run that stopped on a failing call is explained by that error, not its length.
    if (
        "short_run" in signals
        and "ended_on_error" not in signals
        and (weight := weighed("short_run"))
    ):
        final = facts.calls[-1] if facts.calls else None
        findings.append(Finding(
            step=final.step if final else 0, category="process.gave_up",
            confidence=round(weight.lower_bound, 3),
            description=(f"stopped after {len(facts.calls)} tool calls (successful runs of this agent "
                         f"use {profile.median})"
                         + (f"; last: `{final.name}` {final.command}" if final else "")),
            evidence=[final.step] if final else [], tool=final.name if final else "",
            stats={"method": "signal", **weight.as_stats()},
        ))  # fmt: skip
    findings += divergence(facts.calls, neighbours, profile, (own[0], facts.tools) if own else None)
    return _best(findings)


ASSUMED_CONFIDENCE = 0.6  # above an unweighed error's 0.5: chosen on the Who&When tune half


def _assumed(facts: TraceFacts, weight: Weight | None, weights: dict[str, Weight]) -> list[Finding]:
    """The first message where the agent said it would go on with assumed, simulated
    or made-up data: what it could not get, it invented. Kept without a baseline
    (the agent's own words are the evidence); with one, dropped when the agent's
    successful runs say the same as often."""
    raw = weights.get("assumed")
    if raw is not None and weight is None and raw.also_in_successes > 0:
        return []
    # The first message that also says what the agent could not get, else the first
    # (on the Who&When tune half: 12 of 16 within one step of the label, against 10
    # of 16 for the first).
    step, words = next(
        ((s, w) for s, w in facts.assumptions if s in facts.lacking), facts.assumptions[0]
    )
    return [Finding(
        step=step, category="reasoning.invented_information",
        confidence=max(ASSUMED_CONFIDENCE, round(weight.lower_bound, 3) if weight else 0.0),
        description=f"went on with assumed or made-up data instead of what it could not get: \"{words}\"",
        evidence=[s for s, _ in facts.assumptions][:10],
        stats={"method": "assumed", **(weight.as_stats() if weight else {"signal": "assumed"})},
    )]  # fmt: skip


def _who(tool: str) -> str:
    """What failed: a tool, or the agent's own turn (an error step no tool made)."""
    return f"`{tool}`" if tool else "The agent's turn"


def telling_line(text: str, limit: int = 140) -> str:
    """The line of an error that says what went wrong (`facts.decisive_line`), cut
    to `limit` characters."""
    return _first_line(decisive_line(text), limit)


def recovered(facts: TraceFacts) -> list[Finding]:
    """The errors a tool flagged in a run that succeeded: one finding per distinct
    error (its first step; the same text again is evidence), with the tool's own text
    and the run's next call, what an agent that meets the error reads to get past
    it (a shell's by its command's first words)."""
    findings: dict[str, Finding] = {}
    for error in facts.errors:
        if not error.explicit:
            continue
        key = f"{error.tool}:{error.kind}:{error.text[:300]}"
        if key in findings:
            findings[key].evidence.append(error.step)
            continue
        after = next((c for c in facts.calls if c.step > error.step), None)
        head = command_head(after.command) if after and is_generic(after.name) else ""
        then = f"; its next call: `{after.name}`{f' ({head})' if head else ''}" if after else ""
        findings[key] = Finding(
            # "Not handled" is not true of an error the run recovered from; a more
            # specific category (a timeout, a missing file) still is.
            step=error.step,
            category="" if error.category == "tool_use.error_not_handled" else error.category,
            confidence=1.0,
            description=f"{_who(error.tool)} "
            + ("was refused" if refused(error.text) else "failed")
            + f", and the run recovered: {telling_line(error.text)}{then}",
            evidence=[error.step], tool=error.tool, error_text=error.text, source="error",
            stats={"method": "recovered", **({"next_call": after.name} if after else {})},
        )  # fmt: skip
    return sorted(findings.values(), key=lambda f: f.step)[:MAX_FINDINGS]


def _best(findings: list[Finding]) -> list[Finding]:
    """One finding a step (an error there first, else the most confident), at most
    MAX_FINDINGS, earliest first."""
    by_step: dict[int, Finding] = {}
    ranked = sorted(findings, key=lambda f: (f.stats.get("method") != "error", -f.confidence))
    for finding in ranked:
        by_step.setdefault(finding.step, finding)
    best = sorted(by_step.values(), key=lambda f: -f.confidence)[:MAX_FINDINGS]
    return sorted(best, key=lambda f: f.step)
