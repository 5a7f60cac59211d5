"""How the two trajectories here were made: mini-swe-agent 2.4.6 (`pip install
mini-swe-agent==2.4.6`), its own SWE-bench configs and local environment, and its
deterministic test models instead of a language model (this machine reaches no
model). Run from an empty working directory; writes under /tmp/minitraj."""

import json
from pathlib import Path

import yaml
from minisweagent.agents.default import DefaultAgent
from minisweagent.config import builtin_config_dir
from minisweagent.environments.local import LocalEnvironment
from minisweagent.models.test_models import (
    DeterministicModel,
    DeterministicToolcallModel,
    make_output,
    make_toolcall_output,
)

bench = builtin_config_dir / "benchmarks"
out = Path("/tmp/minitraj")
env = LocalEnvironment(cwd="/tmp/minirun/testbed", timeout=10)


def bash(i: int, command: str) -> tuple[dict, dict]:
    call = {
        "id": f"call_{i}",
        "type": "function",
        "function": {"name": "bash", "arguments": json.dumps({"command": command})},
    }
    return call, {"command": command, "tool_call_id": f"call_{i}"}


def turn(text: str | None, i: int, command: str) -> dict:
    call, action = bash(i, command)
    return make_toolcall_output(text, [call], [action])


# v2's bash tool calls with the SWE-bench config: a command that fails, then the
# submission.
cfg = yaml.safe_load((bench / "swebench.yaml").read_text())
model = DeterministicToolcallModel(
    outputs=[
        turn("Look around first.", 1, "ls -la"),
        turn("Read the failing module.", 2, "cat src/utils.py"),
        turn(None, 3, "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"),
    ],
    observation_template=cfg["model"]["observation_template"],
)
agent = DefaultAgent(
    model, env, **cfg["agent"], output_path=out / "acme__utils-1" / "acme__utils-1.traj.json"
)
print(agent.run("The function add() in src/utils.py returns the wrong sum."))

# Text actions with the backticks config, stopped by a step limit of 3.
cfg = yaml.safe_load((bench / "swebench_backticks.yaml").read_text())
text = "THOUGHT: {}\n\n```bash\npython -m pytest -x tests\n```"
model = DeterministicModel(
    outputs=[
        make_output(text.format(t), [{"command": "python -m pytest -x tests"}])
        for t in ("run the tests", "try again", "and again")
    ],
    observation_template=cfg["model"]["observation_template"],
)
agent = DefaultAgent(
    model,
    env,
    **{**cfg["agent"], "step_limit": 3},
    output_path=out / "acme__utils-2" / "acme__utils-2.traj.json",
)
print(agent.run("Make the test suite pass."))
