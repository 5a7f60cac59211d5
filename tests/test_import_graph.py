"""The apps follow the loop and import downward only.

metrics → skills → failures → traces → workspaces, with hivemind_web on top (it
may import any app; apps may import only its `celery` and `settings` modules).
Every import statement counts, including those inside functions, so a cycle
cannot hide behind a late import. Upward calls go by task name (`enqueue`) or
by URL (an htmx partial the higher app serves).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["workspaces", "traces", "failures", "skills", "metrics"]  # lowest first
SHELL = "hivemind_web"
SHELL_ALLOWED = {"hivemind_web.celery", "hivemind_web.settings"}


def _modules(app: str) -> list[Path]:
    return [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):  # every import, at module level or inside a function
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return found


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {app: set() for app in [*ORDER, SHELL]}
    for app in edges:
        for path in _modules(app):
            for module, _ in _imports(path):
                top = module.split(".")[0]
                if top in edges and top != app:
                    edges[app].add(top)
    return edges


def test_no_app_imports_an_app_above_it():
    problems = []
    for app in ORDER:
        rank = ORDER.index(app)
        for path in _modules(app):
            for module, line in _imports(path):
                top = module.split(".")[0]
                where = f"{path.relative_to(ROOT)}:{line} imports {module}"
                if top in ORDER and ORDER.index(top) > rank:
                    problems.append(f"{where} (an app above {app})")
                if top == SHELL and not any(
                    module == allowed or module.startswith(allowed + ".")
                    for allowed in SHELL_ALLOWED
                ):
                    problems.append(f"{where} (only hivemind_web.celery/settings may be imported)")
    assert not problems, "\n".join(problems)


def test_no_import_cycles_between_apps():
    edges = _edges()
    edges[SHELL] = set()  # the shell sits on top; apps use only its celery app and settings

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in edges[node]:
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for app in ORDER if (c := cycle_from(app))]
    assert not cycles, cycles


def test_the_check_sees_function_level_imports(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from skills.models import Skill\n    return Skill\n")
    assert ("skills.models", 2) in _imports(source)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_edges() -> dict[str, set[str]]:
    """Module → the project modules it imports (relative imports resolved)."""
    paths = {(_module_name(p)): p for app in [*ORDER, SHELL] for p in _modules(app)}
    edges: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            edges[name] |= {t for t in targets if t in paths and t != name}
    return edges


def test_no_import_cycles_between_modules():
    """Not even inside an app, and not behind a function-level import."""
    edges = _module_edges()
    # The celery app registers every task module at start-up (by name, lazily).
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" → ".join(c) for c in cycles)
