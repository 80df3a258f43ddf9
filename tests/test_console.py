"""What a run prints, in a terminal (a pseudo-terminal) and in a pipe (a log file, CI)."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from conftest import ROOT

RUN = ["train.py", "callbacks=trace", "trainer.max_steps=300",
       "print_config=false", "logger=none"]  # fmt: skip


def in_a_terminal(*args: str, columns: int = 120) -> str:
    """Everything ``python ARGS`` writes to a pseudo-terminal of ``columns`` columns."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the run closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    return b"".join(chunks).decode()


def test_a_terminal_shows_one_bar_printed_once_below_the_trace(tmp_path):
    out = in_a_terminal(*RUN, "experiment=notgate", f"hydra.run.dir={tmp_path / 'run'}")
    lines = out.replace("\r\n", "\n").split("\n")
    finished = [line for line in lines if "300/300" in line]
    assert len(finished) == 1, finished  # the last bar once, ending its line
    assert finished[0].rsplit("\r", 1)[-1].startswith("updates: 100%")
    assert "Training" not in out and "Epoch 0" not in out  # no frames of Lightning's own bars
    assert "Trainer.fit" not in out
    # trace lines start their own lines (written above the bar, which is redrawn below)
    steps = [line.rsplit("\r", 1)[-1] for line in lines if "step 4: loss" in line]
    assert len(steps) == 1 and steps[0].startswith("step 4: loss")
    assert lines.index(finished[0]) < lines.index("Summary")


def test_a_pipe_gets_plain_lines_and_no_frames(tmp_path):
    r = subprocess.run(
        [sys.executable, *RUN, "experiment=sincos", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "\r" not in r.stdout + r.stderr
    progress = [line for line in r.stdout.splitlines() if line.startswith("updates ")]
    counts = [int(re.match(r"updates (\d+)/300", line).group(1)) for line in progress]
    assert counts == [1, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300]
    assert all("train/loss" in line for line in progress)
    assert "Trainer.fit" not in r.stdout + r.stderr


def test_a_large_batched_sweep_prints_a_bounded_console(tmp_path):
    seeds = ",".join(str(s) for s in range(1, 41))
    r = subprocess.run(
        [sys.executable, "train.py", "-m", "sweep=batched", f"seed={seeds}", "optim.lr=0.1,0.2",
         "trainer.max_steps=5", "logger=none", "callbacks.figures=null", "print_config=false",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert len(lines) <= 10, lines
    assert any("75 more" in line for line in lines)
    assert not any("Warning" in line for line in lines)


def test_a_minimizers_lines_say_its_restart_budget_and_time_left(tmp_path, monkeypatch, capsys):
    """BFGS over ten restarts (notebook 004): each progress line names the restart at work
    of R, the iteration budget, and (once a restart converged) the time the rest will take."""
    from gradlab import cli as commands

    args = ["experiment=wave1d", "trainer.max_steps=600", "logger=none", "print_config=false",
            "callbacks.progress_bar.refresh_rate=10", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["train.py", *args])
    commands.train()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("iterations ")]
    assert lines[0].startswith("iterations 1 ") and "restart 1/10" in lines[0]
    assert all("budget <=600" in ln for ln in lines)  # max_steps caps 10 x 10000
    later = [ln for ln in lines if "restart 1/10" not in ln]
    assert later and all(" left ~" in ln for ln in later)
