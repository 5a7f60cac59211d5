"""A skill body as itemised instructions, each with a stable id and its evidence.

The body agents read stays plain markdown; each version also stores its
instructions (`SkillVersion.instructions`): `{"id", "section", "text", "because",
"counts", "kind"}`. A draft's ids come from its evidence (the same evidence,
the same id: skills/distill.py `instruction_id`). When a person edits the body,
its bullets under "Do" and "Don't" are read back and matched to the previous
version's instructions: the same text keeps its id and evidence; a changed text
that is still close to an old one keeps its id and is marked edited (its
evidence kept, said to be edited); anything else is a new instruction with no
evidence. So a revision is a list of instructions added, edited and removed,
never a silent rewrite of the whole body (`instruction_changes`).

Reviewer flags (`instruction_flags`) are computed for every version, drafted
or edited: an instruction resting on no evidence; a tool named in backticks
that appears in no evidence and that no recent run of the mode's agents called
(`skills.services.tools_called`); an instruction that contradicts a published skill
of the workspace (one says to call a tool the other says not to call).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable
from typing import Any

SECTIONS = ("Do", "Don't")
EDITED_SIMILARITY = 0.6
_HEADING = re.compile(r"^##\s+(.+?)\s*$")
_BULLET = re.compile(r"^\s*[-*]\s+(.+?)\s*$")
_TOOL = re.compile(r"`([A-Za-z_][\w.\-]*)`")
_NEGATIVE = re.compile(r"\b(?:do not|don't|never|avoid)\b", re.I)


def bullets(body: str) -> list[tuple[str, str]]:
    """(section, text) of every bullet under "Do" and "Don't"."""
    found, section = [], ""
    for line in body.splitlines():
        heading = _HEADING.match(line)
        if heading:
            section = heading.group(1)
            continue
        bullet = _BULLET.match(line)
        if bullet and section in SECTIONS:
            text = bullet.group(1)
            if line[:1].isspace() and text.startswith("Why:"):
                continue  # an instruction's reason, under it (skills/distill.py)
            if not text.startswith("Nothing beyond the rules"):
                found.append((section, text))
    return found


_ORDER = re.compile(
    r"before (?:calling|you call|using|you use|running) `(?P<tool>[^`]+)`[^`]*?"
    r"\b(?:call|run|use)s? `(?P<other>[^`]+)`",
    re.I,
)
_ORDER_AFTER = re.compile(
    r"^(?:always |first )?(?:call|run|use) `(?P<other>[^`]+)`[^`]*?\bbefore "
    r"(?:calling|you call|using|running) `(?P<tool>[^`]+)`",
    re.I,
)
_FORBID = re.compile(
    r"^(?:do not|don't|never|avoid) (?:call(?:ing)?|us(?:e|ing)|run(?:ning)?) `(?P<tool>[^`]+)`",
    re.I,
)
_REQUIRE = re.compile(
    r"^(?:always |make sure (?:to|you) |be sure to )?(?:call|run|use) `(?P<tool>[^`]+)`"
    r"(?: before (?:you finish|finishing|ending|you end)\b| at least once\b|[.]?$)",
    re.I,
)


def checkable(text: str) -> tuple[str, str, str] | None:
    """(kind, tool, other) of an instruction the backtest can read from calls, or
    None: "Before calling `T`, call `O`" (order), "Call `T` before you finish"
    (missing), "Do not call `T`…" (unexpected)."""
    text = text.strip()
    for pattern in (_ORDER, _ORDER_AFTER):
        found = pattern.search(text)
        if found:
            return "order", found["tool"], found["other"]
    found = _FORBID.search(text)
    if found:
        return "unexpected", found["tool"], ""
    found = _REQUIRE.search(text)
    if found:
        return "missing", found["tool"], ""
    return None


def read_back(body: str, previous: list[dict[str, Any]], editor: str) -> list[dict[str, Any]]:
    """The instructions of an edited body, matched to the previous version's."""
    unused = {i["id"]: i for i in previous}
    result = []
    pending = []
    for section, text in bullets(body):
        same = next((i for i in unused.values() if i["text"] == text), None)
        if same is not None:
            result.append({**same, "section": section})
            del unused[same["id"]]
        else:
            pending.append((len(result), section, text))
            result.append({})
    for position, section, text in pending:
        best, score = None, 0.0
        for old in unused.values():
            ratio = difflib.SequenceMatcher(None, old["text"], text).ratio()
            if ratio > score:
                best, score = old, ratio
        if best is not None and score >= EDITED_SIMILARITY:
            del unused[best["id"]]
            result[position] = {**best, "section": section, "text": text,
                                "edited_by": editor, "edited_from": best["text"]}  # fmt: skip
        else:
            result[position] = {
                "id": "h-" + hashlib.sha256(text.encode()).hexdigest()[:8],
                "section": section, "text": text, "kind": "human", "added_by": editor,
                "because": "", "counts": {},
            }  # fmt: skip
    return result


def instruction_changes(
    old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Added, edited and removed instructions between two versions (by id)."""
    before = {i["id"]: i for i in old}
    after = {i["id"]: i for i in new}
    changes = []
    for item in new:
        if item["id"] not in before:
            changes.append({"change": "added", "id": item["id"], "text": item["text"]})
        elif before[item["id"]]["text"] != item["text"]:
            changes.append({"change": "edited", "id": item["id"], "text": item["text"],
                            "was": before[item["id"]]["text"]})  # fmt: skip
    for item in old:
        if item["id"] not in after:
            changes.append({"change": "removed", "id": item["id"], "text": item["text"]})
    return changes


def named_tools(instructions: list[dict[str, Any]]) -> set[str]:
    """Every name the instructions give in backticks (a tool, as `instruction_flags` reads them)."""
    return {tool for item in instructions for tool in _TOOL.findall(str(item.get("text", "")))}


def instruction_flags(
    instructions: list[dict[str, Any]],
    evidence_texts: list[str],
    published: list[tuple[str, list[dict[str, Any]]]],
    called: Iterable[str] = (),
) -> list[str]:
    """Flags a reviewer must read, in words (see the module docstring). `called`: tools
    the agents' own runs call (a fix that names one, "call `b` next", names a real
    tool, not one a model made up)."""
    flags = []
    evidence = "\n".join(evidence_texts).lower()
    known_tools = {t.lower() for t in _TOOL.findall("\n".join(evidence_texts))}
    known_tools |= {t.lower() for t in called}
    for item in instructions:
        if not item.get("because") and not item.get("counts"):
            flags.append(f"Instruction {item['id']} rests on no evidence (added by "
                         f"{item.get('added_by', 'someone')}): “{item['text'][:120]}”")  # fmt: skip
        backing = {t.lower() for t in _TOOL.findall(item.get("because", ""))}
        for tool in _TOOL.findall(item["text"]):
            low = tool.lower()
            if low not in known_tools and low not in backing and low not in evidence:
                flags.append(f"Instruction {item['id']} names `{tool}`, which appears in none "
                             "of the evidence and no recent run of its agents called.")  # fmt: skip
    for name, others in published:
        for item in instructions:
            for other in others:
                if _contradicts(item["text"], other["text"]):
                    flags.append(f"Instruction {item['id']} (“{item['text'][:80]}”) contradicts "
                                 f"published skill {name}: “{other['text'][:80]}”")  # fmt: skip
    return flags


def _contradicts(a: str, b: str) -> bool:
    """One says to call a tool, the other says not to (same tool named first)."""
    tools_a, tools_b = _TOOL.findall(a), _TOOL.findall(b)
    if not tools_a or not tools_b or tools_a[0] != tools_b[0]:
        return False
    return bool(_NEGATIVE.search(a)) != bool(_NEGATIVE.search(b)) and (
        "call" in a.lower() and "call" in b.lower()
    )
