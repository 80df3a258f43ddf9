"""The README's Extending example, as it is written there: a data module and an experiment of
one's own in a project outside the package, trained from the command line and from
``gradlab.run`` through ``GRADLAB_CONFIG_PATH``; a fresh process is left as it was found."""

import json
import os
import re
import subprocess
import sys

from conftest import ROOT


def readme_files() -> dict[str, str]:
    """``myproject/PATH`` -> the text of the fenced block that follows the line `` `PATH`: ``."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^`(myproject/[^`]+)`:\n\n```\w*\n(.*?)^```", text, re.S | re.M)
    return dict(blocks)


def write_project(tmp_path):
    files = readme_files()
    assert set(files) == {
        "myproject/mypackage/cube.py",
        "myproject/configs/data/cube.yaml",
        "myproject/configs/experiment/cube.yaml",
    }
    for name, body in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    (tmp_path / "myproject" / "mypackage" / "__init__.py").write_text("")
    project = tmp_path / "myproject"
    env = dict(os.environ, GRADLAB_CONFIG_PATH="configs", PYTHONPATH=str(project))
    return project, env


def test_the_readme_extending_example_trains_from_the_command_line(tmp_path):
    project, env = write_project(tmp_path)
    out = tmp_path / "run"
    r = subprocess.run(
        [sys.executable, "-m", "gradlab", "experiment=cube", f"hydra.run.dir={out}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["step"] == 300
    assert metrics["test/mse"] < 0.01  # a 1-16-1 tanh net fits x^3 on [-1, 1]
    config = (out / ".hydra" / "config.yaml").read_text()
    assert "_target_: mypackage.cube.CubeDataModule" in config


def test_the_readme_extending_example_from_python_leaves_a_fresh_process_as_found(tmp_path):
    """``gradlab.run`` called first in a new process: the environment and Python's random
    state after it are those before it (importing torch and Lightning changes both)."""
    project, env = write_project(tmp_path)
    code = """
import os, random, sys
random.seed(7)
environ, state = dict(os.environ), random.getstate()
import gradlab
run = gradlab.run("experiment=cube", output_dir=sys.argv[1], quiet=True)
assert run.metrics["status"] == "ok", run.metrics
changed = sorted(k for k in set(os.environ) | set(environ) if os.environ.get(k) != environ.get(k))
print("changed:", changed)
print("random kept:", random.getstate() == state)
"""
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run")],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "changed: []" in r.stdout and "random kept: True" in r.stdout, r.stdout


def test_a_target_of_ones_own_with_the_groups_keys_gets_a_line_naming_the_keys_it_takes(tmp_path):
    project, env = write_project(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "gradlab", "data._target_=mypackage.cube.CubeDataModule",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: data.") and "it takes: n_train" in last, last
    assert "GRADLAB_CONFIG_PATH" in last
