"""Hook-log folders → one session's events in the order they happened.

Hook loggers (the widespread "claude-code-hooks-mastery" layout) write one
JSON array per event type (`pre_tool_use.json`, `post_tool_use.json`,
`stop.json`, …), often with the session transcript (`chat.json`) beside them;
others write JSON lines. Replayed file by file, a session comes back in
alphabetical order of event names: PostToolUse before PreToolUse, SessionEnd
before SessionStart. `session_events` merges every file of a folder instead,
per session, by time, and by order within a file where times tie or are
missing:

1. The time of an event is the payload's own (`timestamp`, `time`, `ts`,
   `hivemind_time`) when the logger wrote one.
2. Else, when the folder holds the session's transcript, the time the
   transcript gives the same event: a PreToolUse takes the time of the
   `tool_use` with its tool and input (the k-th such call for the k-th such
   event), a PostToolUse the time of that call's `tool_result`, a prompt the
   time of the user entry with its text, the k-th Stop the time just before the
   (k+1)-th prompt.
3. An event with no time follows the event before it in its own file. Events
   after the last dated one of their file (the session went on after its
   transcript was saved) come after everything dated, in the order of rule 4.
4. Where nothing gives a time, a single file's own order holds, and across
   files the causal order of a live session:
   SessionStart, prompts, each PreToolUse followed by its PostToolUse (paired
   by tool and input, in order), subagent and notification events, Stop,
   SessionEnd. A multi-turn session without times, split over files, then
   replays as one turn;
   its final status is the same, since the status rule reads the last prompt,
   the last tool call and the calls never answered.

The time found is written into each payload as `hivemind_time` (an undated
event takes the time of the dated event before it) so the server dates the step
by it rather than by the moment of the replay. Standard library
only (it runs on agent machines).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TOOL_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure")
TIME_FIELDS = ("hivemind_time", "timestamp", "time", "ts")
# Where an event sits in a live session when nothing dates it.
RANK = {
    "SessionStart": 0, "UserPromptSubmit": 1, "PreToolUse": 2, "PostToolUse": 3,
    "PostToolUseFailure": 3, "SubagentStart": 2, "SubagentStop": 4, "Notification": 4,
    "PreCompact": 4, "Stop": 5, "StopFailure": 5, "SessionEnd": 6,
}  # fmt: skip


def is_transcript(items: list[Any]) -> bool:
    """A Claude Code transcript (entries with a type and a message), not hook payloads."""
    for item in items[:20]:
        if (
            isinstance(item, dict)
            and "hook_event_name" not in item
            and item.get("type") in ("user", "assistant", "system", "summary")
            and ("sessionId" in item or "message" in item or "uuid" in item)
        ):
            return True
    return False


def _parse_time(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / (1000.0 if value > 10**11 else 1.0)
    if isinstance(value, str) and value.strip():
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()
    return None


def _own_time(payload: dict[str, Any]) -> float | None:
    for name in TIME_FIELDS:
        found = _parse_time(payload.get(name))
        if found is not None:
            return found
    return None


def server_dated(payload: dict[str, Any]) -> bool:
    """Whether the server dates this payload by a time in it: an ISO text in
    `hivemind_time` or `timestamp` (`traces.claude_code._payload_time`); a time
    under another name, or as a number, must be written into `hivemind_time`."""
    return any(
        isinstance(payload.get(name), str) and _parse_time(payload[name]) is not None
        for name in ("hivemind_time", "timestamp")
    )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text") or "")
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


class _TranscriptTimes:
    """When the transcript says each call, result and prompt of a session happened."""

    def __init__(self, entries: list[Any]) -> None:
        self.calls: dict[str, list[tuple[float, str]]] = defaultdict(
            list
        )  # (tool, input) → (t, id)
        self.results: dict[str, float] = {}  # tool_use id → time of its result
        self.prompts: dict[str, list[float]] = defaultdict(list)
        self.prompt_times: list[float] = []
        self.ends: dict[str, float] = {}  # session → time of its transcript's last entry
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            stamp = _parse_time(entry.get("timestamp"))
            if stamp is not None and entry.get("sessionId"):
                session = str(entry["sessionId"])
                self.ends[session] = max(stamp, self.ends.get(session, stamp))
            message = _obj(entry.get("message"))
            content = message.get("content")
            if stamp is None:
                continue
            if entry.get("type") == "assistant":
                for block in content if isinstance(content, list) else []:
                    if isinstance(block, dict) and block.get("type") == "tool_use":
                        key = _canon([block.get("name"), block.get("input")])
                        self.calls[key].append((stamp, str(block.get("id") or "")))
            elif entry.get("type") == "user" and not entry.get("isMeta"):
                for block in content if isinstance(content, list) else []:
                    if isinstance(block, dict) and block.get("type") == "tool_result":
                        self.results[str(block.get("tool_use_id"))] = stamp
                text = _text_of(content).strip()
                if text and not entry.get("isCompactSummary") and not text.startswith("["):
                    self.prompts[text].append(stamp)
                    self.prompt_times.append(stamp)
        self.used: dict[str, int] = defaultdict(int)

    def call(self, tool: Any, tool_input: Any, *, result: bool) -> float | None:
        key = _canon([tool, tool_input])
        seen = self.calls.get(key, [])
        count_key = ("post:" if result else "pre:") + key
        position = self.used[count_key]
        if position >= len(seen):
            return None
        self.used[count_key] += 1
        stamp, call_id = seen[position]
        return self.results.get(call_id, stamp + 0.001) if result else stamp

    def prompt(self, text: Any) -> float | None:
        key = str(text or "").strip()
        seen = self.prompts.get(key, [])
        position = self.used["prompt:" + key]
        if position >= len(seen):
            return None
        self.used["prompt:" + key] += 1
        return seen[position]

    def stop(self, number: int) -> float | None:
        """The k-th Stop (from 0) ends the turn before the (k+1)-th prompt."""
        if number + 1 < len(self.prompt_times):
            return sorted(self.prompt_times)[number + 1] - 0.0005
        return None


def _pair_calls(events: list[tuple[int, int, dict[str, Any]]]) -> list[tuple[int, int, dict]]:
    """Undated tool events: each PreToolUse, then its PostToolUse (same tool and input)."""
    pres = [e for e in events if e[2].get("hook_event_name") == "PreToolUse"]
    posts = [
        e for e in events if e[2].get("hook_event_name") in ("PostToolUse", "PostToolUseFailure")
    ]
    others = [e for e in events if e not in pres and e not in posts]
    waiting: dict[str, list[tuple[int, int, dict]]] = defaultdict(list)
    for post in posts:
        p = post[2]
        waiting[_canon(p.get("tool_use_id") or [p.get("tool_name"), p.get("tool_input")])].append(
            post
        )
    ordered: list[tuple[int, int, dict]] = []
    answered: set[int] = set()
    for pre in pres:
        p = pre[2]
        ordered.append(pre)
        queue = waiting.get(
            _canon(p.get("tool_use_id") or [p.get("tool_name"), p.get("tool_input")])
        )
        if queue:
            post = queue.pop(0)
            ordered.append(post)
            answered.add(id(post))
    # A PostToolUse whose PreToolUse was not logged keeps its place among the others.
    unanswered = [e for e in posts if id(e) not in answered]
    for post in unanswered:
        before = [i for i, e in enumerate(ordered) if e[0] == post[0] and e[1] < post[1]]
        ordered.insert(before[-1] + 1 if before else len(ordered), post)
    return others + ordered


def session_events(
    files: list[list[dict[str, Any]]], transcript: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Every payload of the given hook-log files, per session, in the order it happened."""
    times = _TranscriptTimes(transcript or [])
    transcript_sessions = {
        str(e.get("sessionId"))
        for e in transcript or []
        if isinstance(e, dict) and e.get("sessionId")
    }
    by_session: dict[str, list[tuple[int, int, dict[str, Any]]]] = defaultdict(list)
    session_order: list[str] = []
    for file_number, payloads in enumerate(files):
        for position, payload in enumerate(payloads):
            session = str(payload.get("session_id") or "")
            if session not in by_session:
                session_order.append(session)
            by_session[session].append((file_number, position, payload))
    out: list[dict[str, Any]] = []
    for session in session_order:
        events = by_session[session]
        dated: dict[int, float | None] = {}
        for event in events:
            payload = event[2]
            name = str(payload.get("hook_event_name") or "")
            stamp = _own_time(payload)
            if stamp is None and session in transcript_sessions:
                if name == "PreToolUse":
                    stamp = times.call(
                        payload.get("tool_name"), payload.get("tool_input"), result=False
                    )
                elif name in ("PostToolUse", "PostToolUseFailure"):
                    stamp = times.call(
                        payload.get("tool_name"), payload.get("tool_input"), result=True
                    )
                elif name == "UserPromptSubmit":
                    stamp = times.prompt(payload.get("prompt"))
            dated[id(event)] = stamp
        if not any(v is not None for v in dated.values()):
            out += [e[2] for e in _causal(events)]
            continue
        out += _by_time(events, dated, times.ends.get(session))
    return out


def _causal(events: list[tuple[int, int, dict[str, Any]]]) -> list[tuple[int, int, dict]]:
    """Undated events in the order of a live session (rule 4). Events of one file
    only (a JSON-lines log of every event) keep its order: one log's own order is the
    session's, turns included."""
    if len({e[0] for e in events}) <= 1:
        return sorted(events, key=lambda e: e[1])
    ranked = sorted(
        events, key=lambda e: (RANK.get(str(e[2].get("hook_event_name")), 4), e[0], e[1])
    )
    tools = [e for e in ranked if str(e[2].get("hook_event_name")) in TOOL_EVENTS]
    start = next((i for i, e in enumerate(ranked) if e in tools), len(ranked))
    rest = [e for e in ranked if e not in tools]
    return rest[:start] + _pair_calls(tools) + rest[start:]


def _by_time(
    events: list[tuple[int, int, dict[str, Any]]],
    dated: dict[int, float | None],
    transcript_end: float | None = None,
) -> list[dict[str, Any]]:
    """Rules 1-3: by time; an undated event after the one before it in its file, and
    those after the last dated event of their file after everything dated (the
    transcript was saved before they happened), in causal order, and dated just
    after the transcript's last entry when a file dated in part goes on past it
    (a file with no dated event says nothing of when its events happened); the
    k-th Stop ends the turn before the (k+1)-th prompt, the last Stop comes last."""
    known = [t for t in dated.values() if t is not None]
    latest = max(known)
    prompts = sorted(
        t for e in events if e[2].get("hook_event_name") == "UserPromptSubmit"
        if (t := dated[id(e)]) is not None
    )  # fmt: skip
    stops = [e for e in events if e[2].get("hook_event_name") == "Stop" and dated[id(e)] is None]
    for number, stop in enumerate(stops):
        if number < len(stops) - 1 and number + 1 < len(prompts):
            dated[id(stop)] = prompts[number + 1] - 0.0005
    keyed = []
    by_file: dict[int, list[tuple[int, int, dict]]] = defaultdict(list)
    for event in events:
        by_file[event[0]].append(event)
    # Events after the last dated one of their file happened after the transcript was
    # saved: nothing dates them, so they follow the causal order of a session (rule
    # 4: each PreToolUse then its PostToolUse), not their positions in files of
    # different lengths.
    tail: list[tuple[int, int, dict]] = []
    went_on = False  # a file dated in part goes on past its last dated event
    for file_events in by_file.values():
        file_events.sort(key=lambda e: e[1])
        last_dated = max(
            (i for i, e in enumerate(file_events) if dated[id(e)] is not None), default=-1
        )
        later = [
            e for i, e in enumerate(file_events)
            if i > last_dated and dated[id(e)] is None
            and e[2].get("hook_event_name") not in ("SessionStart", "Stop", "SessionEnd")
        ]  # fmt: skip
        tail += later
        went_on = went_on or (last_dated >= 0 and bool(later))
    after = {id(e): n for n, e in enumerate(_causal(tail))}
    for file_events in by_file.values():
        previous: tuple[float, int] = (float("-inf"), 0)
        for i, event in enumerate(file_events):
            stamp = dated[id(event)]
            name = str(event[2].get("hook_event_name"))
            if stamp is not None:
                previous = (stamp, 0)
            elif name == "SessionStart":
                previous = (float("-inf"), i)
            elif name in ("Stop", "SessionEnd"):
                previous = (float("inf"), i + (10**9 if name == "SessionEnd" else 0))
            elif id(event) in after:
                previous = (latest + 0.001, after[id(event)])
            else:
                previous = (previous[0], previous[1] + 1)
            keyed.append(((*previous, RANK.get(name, 4), event[0], event[1]), event))
    ordered = []
    # An undated event takes the time of the last dated one before it (the first
    # dated one if none is before it): replayed steps keep the session's dates.
    order = [event for _, event in sorted(keyed, key=lambda k: k[0])]
    first = next(t for e in order if (t := dated[id(e)]) is not None and abs(t) != float("inf"))
    current = first
    for event in order:
        payload = dict(event[2])
        stamp = dated[id(event)]
        if stamp is not None and abs(stamp) != float("inf"):
            current = stamp
        elif id(event) in after and went_on and transcript_end is not None:
            current = max(current, transcript_end + 0.001)
        if not server_dated(payload):
            # Its own time (`time`, `ts`, a number) or the one before it, as the server reads it.
            own = _own_time(payload)
            stamp = own if own is not None and abs(own) != float("inf") else current
            payload["hivemind_time"] = datetime.fromtimestamp(stamp, UTC).isoformat()
        ordered.append(payload)
    return ordered


def read_items(path: Path) -> list[Any]:
    """A JSON array (or one object) or JSON lines; ValueError names the line."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"line {number}: not JSON ({exc})") from None
    return items
