"""A sweep summary reads its jobs defensively: a job whose files are unreadable, truncated
or of the wrong type is listed as ``unreadable`` with the file named, and the summary of
the other jobs is still written."""

import csv
import json
import sys

import pytest

from gradlab import cli as commands
from gradlab.sweep.summarize import summarize


def test_damaged_job_files_are_listed_and_the_summary_is_written(tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "seed=1,2,3,4,5,6", "trainer.max_steps=20",
                                      "logger=none", "print_config=false",
                                      f"hydra.sweep.dir={sweep}"])  # fmt: skip
    commands.train()
    (sweep / "0" / "metrics.json").write_text("[1, 2]")  # the wrong type
    metrics = json.loads((sweep / "1" / "metrics.json").read_text())
    (sweep / "1" / "metrics.json").write_text(json.dumps({**metrics, "train/loss": "abc"}))
    history = (sweep / "2" / "history.csv").read_text()
    (sweep / "2" / "history.csv").write_text(history[: len(history) // 3])  # truncated
    (sweep / "3" / ".hydra" / "overrides.yaml").write_text(": : [")
    (sweep / "4" / "metrics.json").write_bytes(b"\x00\xff")
    summarize(sweep)
    with open(sweep / "summary.csv", newline="") as f:
        rows = {r["job"]: r for r in csv.DictReader(f)}
    expected = {
        "0": f"{sweep}/0/metrics.json: not a JSON object",
        "1": f"{sweep}/1/metrics.json: train/loss is not a number ('abc')",
        "3": f"{sweep}/3/.hydra/overrides.yaml: not readable YAML",
        "4": f"{sweep}/4/metrics.json: not readable JSON",
    }
    for job, error in expected.items():
        assert rows[job]["status"] == "unreadable" and rows[job]["error"] == error, job
    assert rows["2"]["status"] == rows["5"]["status"] == "ok"  # a cut history: its curve is shorter
    assert float(rows["5"]["train/loss"]) > 0
    assert (sweep / "summary.png").is_file() and (sweep / "curves.png").is_file()


@pytest.mark.parametrize("header", ["step,loss", "step,loss,loss_r0,loss_r1"])
def test_a_history_cut_mid_line_gives_the_updates_before_it(tmp_path, header):
    """read_curves: a history.csv cut inside a line (a job killed while writing it) gives the
    losses of the whole lines before it, one curve per restart."""
    from gradlab.sweep.job_reading import read_curves

    width = len(header.split(",")) - 1
    rows = [",".join([str(i), *[repr(0.5**i + k) for k in range(width)]]) for i in range(5)]
    (tmp_path / "history.csv").write_text("\n".join([header, *rows]) + "\n")
    whole = read_curves(tmp_path)
    (tmp_path / "history.csv").write_text("\n".join([header, *rows[:3], "3,"]))
    cut = read_curves(tmp_path)
    assert [len(c) for c in whole] == [5] * max(width - 1, 1)
    assert cut == [c[:3] for c in whole] and cut[0][2] == 0.25 + (width > 1)
