"""Hivemind client: stdlib-only helpers agents install next to themselves.

`python -m hivemind_client skills pull --dir .claude/skills` keeps a local
skills folder in step with the workspace's published skills.
"""

__version__ = "0.1.0"
