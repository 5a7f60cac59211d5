"""SKILL.md: render, parse and validate against the Agent Skills specification.

A SKILL.md is YAML front matter followed by a markdown body. The spec allows
only these front-matter keys: name, description, and optionally license,
compatibility, metadata, allowed-tools. Our own bookkeeping (versions, evidence,
authorship) lives in the database, never in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_BODY_LINES = 500
ALLOWED_KEYS = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}
REQUIRED_SECTIONS = ("When this applies", "Do", "Don't", "How to check")


@dataclass(frozen=True)
class SkillDoc:
    name: str
    description: str
    body: str


def validate(doc: SkillDoc, *, require_sections: bool = True) -> list[str]:
    """Every way `doc` breaks the spec (or our section layout); empty when valid."""
    errors = []
    if not 1 <= len(doc.name) <= MAX_NAME or not NAME_RE.match(doc.name):
        errors.append(
            "name must be 1-64 characters of lowercase letters, digits and single hyphens, "
            "not starting or ending with a hyphen"
        )
    if not 1 <= len(doc.description.strip()) <= MAX_DESCRIPTION:
        errors.append("description must be 1-1024 characters")
    if not doc.body.strip():
        errors.append("body must not be empty")
    elif len(doc.body.splitlines()) > MAX_BODY_LINES:
        errors.append(f"body must be at most {MAX_BODY_LINES} lines")
    if require_sections:
        headings = {h.strip() for h in re.findall(r"^#{1,3}\s+(.+)$", doc.body, re.M)}
        missing = [s for s in REQUIRED_SECTIONS if s not in headings]
        if missing:
            errors.append(f"body is missing section(s): {', '.join(missing)}")
    return errors


def render(doc: SkillDoc) -> str:
    front = yaml.safe_dump(
        {"name": doc.name, "description": doc.description.strip()},
        sort_keys=False,
        allow_unicode=True,
        width=10_000,
    )
    return f"---\n{front}---\n\n{doc.body.strip()}\n"


def parse(text: str) -> SkillDoc:
    """Read a SKILL.md; raises ValueError with the reason when it is not one."""
    match = re.match(r"^---\n(.*?)\n---\n?(.*)$", text, re.S)
    if not match:
        raise ValueError("SKILL.md must start with YAML front matter between '---' lines")
    try:
        front = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML: {exc}") from None
    if not isinstance(front, dict):
        raise ValueError("front matter must be a mapping")
    extra = set(front) - ALLOWED_KEYS
    if extra:
        raise ValueError(
            f"front matter has keys the spec does not allow: {', '.join(sorted(extra))}"
        )
    return SkillDoc(
        name=str(front.get("name", "")),
        description=str(front.get("description", "")),
        body=match.group(2).strip(),
    )


def slugify_name(text: str) -> str:
    """A spec-valid name from free text."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:MAX_NAME].strip("-")
    return name or "skill"
