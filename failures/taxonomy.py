"""The failure categories a diagnosis sorts incidents into, shipped as data.

Shaped from three public taxonomies of agent failures:

- TRAIL (Deshpande et al., 2025, "TRAIL: Trace Reasoning and Agentic Issue
  Localization", arXiv:2505.08638): reasoning errors (hallucination, misread tool
  output, wrong conclusion), system-execution errors (tool and API errors,
  timeouts, auth, resource limits) and planning/coordination errors;
- AgentRx (Microsoft Research, 2025, "AgentRx: diagnosing AI agent failures
  from execution trajectories"): localising the *critical step* and naming a
  root-cause category such as policy violation, missing information gathering,
  wrong tool or arguments, and environment failures;
- MAST (Cemri et al., 2025, "Why Do Multi-Agent LLM Systems Fail?",
  arXiv:2503.13657): specification and system-design failures (disobeyed task
  or role, step repetition, unaware of termination), inter-agent misalignment
  (failed to ask for clarification, ignored input, reasoning–action mismatch)
  and task verification failures (premature termination, no or wrong
  verification).

A workspace can edit its copy on the settings page (`WorkspaceTaxonomy`); the
keys below are what the offline diagnoser assigns, and a workspace's added
categories are offered to the Claude diagnoser.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    key: str  # "group.name"
    label: str
    description: str

    @property
    def group(self) -> str:
        return self.key.split(".", 1)[0]


DEFAULT: tuple[Category, ...] = (
    Category("tool_use.wrong_tool", "Wrong tool", "Called a tool that does not do what the task needed."),
    Category("tool_use.wrong_arguments", "Wrong or missing arguments", "Called the right tool with wrong, malformed or missing arguments."),
    Category("tool_use.error_not_handled", "Tool error not handled", "A tool failed and the agent went on as if it had not, or stopped."),
    Category("reasoning.misread_output", "Misread tool output", "Drew the wrong fact from what a tool returned."),
    Category("reasoning.invented_information", "Invented information", "Used an id, value or fact that nothing in the trace gave it."),
    Category("reasoning.wrong_conclusion", "Wrong conclusion", "Reasoned from correct facts to a wrong answer or action."),
    Category("process.skipped_check", "Skipped a required check or confirmation", "Acted without the check or confirmation the task or policy requires."),
    Category("process.policy_violation", "Violated a written policy", "Did something the agent's written policy forbids."),
    Category("process.acted_before_gathering", "Acted before gathering information", "Changed something before looking up what it needed to know."),
    Category("process.gave_up", "Gave up or stopped early", "Stopped, handed off or submitted before the task was done."),
    Category("process.looped", "Looped", "Repeated the same action or kept going far longer than successful runs."),
    Category("communication.misunderstood_request", "Misunderstood the request", "Did something other than what the user asked; the user objected."),
    Category("communication.did_not_ask", "Did not ask when the request was ambiguous", "Guessed instead of asking the user."),
    Category("environment.service_error", "Service error", "A dependency answered 5xx, refused the connection or crashed."),
    Category("environment.timeout", "Timeout", "A call took too long and was cut off."),
    Category("environment.auth", "Authentication or permission", "Credentials were missing, expired or not allowed."),
    Category("environment.missing_dependency", "Missing dependency", "A command, module, file or resource the run needed was not there."),
    Category("outcome.check_failed", "A check of the outcome failed", "The harness's own check of the result failed (a database state, a test, an assertion) and nothing more specific was found."),
)  # fmt: skip

GROUPS = {
    "tool_use": "Tool use",
    "reasoning": "Reasoning",
    "process": "Process",
    "communication": "Communication",
    "environment": "Environment",
    "outcome": "Outcome checks",
}
KEY_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"


def default_rows() -> list[dict[str, str]]:
    return [{"key": c.key, "label": c.label, "description": c.description} for c in DEFAULT]


def as_categories(rows: list[dict[str, str]]) -> list[Category]:
    return [Category(r["key"], r["label"], r.get("description", "")) for r in rows]


def to_text(categories: list[Category]) -> str:
    """The editable form: one category per line, `key | label | description`."""
    return "\n".join(f"{c.key} | {c.label} | {c.description}" for c in categories)


def parse_text(text: str) -> tuple[list[Category], list[str]]:
    """Read the editable form back; return the categories and a message per bad line."""
    import re

    categories: list[Category] = []
    errors: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|", 2)]
        if len(parts) < 2 or not parts[1]:
            errors.append(f"Line {number}: write `key | label | description`.")
            continue
        key = parts[0]
        if not re.match(KEY_PATTERN, key) or key.split(".")[0] not in GROUPS:
            errors.append(
                f"Line {number}: {key!r} must be group.name with a group of "
                f"{', '.join(GROUPS)} (lower case, digits and _)."
            )
            continue
        if key in seen:
            errors.append(f"Line {number}: {key!r} is listed twice.")
            continue
        seen.add(key)
        categories.append(Category(key, parts[1][:80], (parts[2] if len(parts) > 2 else "")[:300]))
    if not categories and not errors:
        errors.append("List at least one category.")
    missing = [c.key for c in DEFAULT if c.key not in seen]
    if missing and not errors:
        errors.append(
            "Keep the built-in categories (the offline diagnoser uses them); missing: "
            + ", ".join(missing)
            + ". Change their labels and descriptions freely."
        )
    return categories, errors
