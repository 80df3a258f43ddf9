"""Summarize a Hydra multirun: one row per job in summary.csv, one per group of seeds in
summary_groups.csv, both in summary.md; summary.png (each metric against each swept value)
and curves.png (every job's loss curve).

Runs by itself at the end of every multirun (``SweepSummary``, a Hydra callback) and after
each job, so a sweep with failed jobs is summarized too. By hand:
``python -m gradlab summarize logs/<task>/multiruns/<timestamp>``.
"""

import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

from hydra.experimental.callback import Callback

from gradlab.pipeline.mlflow_runs import end_sweep_run, mlflow_node, start_sweep_run
from gradlab.safe_files import open_new, write_text
from gradlab.sweep.job_reading import METRICS, read_curves, read_job
from gradlab.sweep_plan import PLAN, plan_jobs


def _not_started(sweep_dir: Path, rows_so_far: list[dict]) -> list[dict]:
    """The planned jobs with no directory: by number, or by their overrides (a job directory
    named otherwise: ``hydra.sweep.subdir``)."""
    plan_file = sweep_dir / PLAN
    if not plan_file.is_file():
        return []
    names = {r["job"] for r in rows_so_far}
    started = {frozenset(r["overrides"].split()) for r in rows_so_far}
    rows = []
    for i, overrides in enumerate(json.loads(plan_file.read_text())):
        if str(i) not in names and frozenset(overrides) not in started:
            params = dict(o.split("=", 1) for o in overrides if "=" in o)
            rows.append(
                {
                    "job": str(i),
                    "overrides": " ".join(overrides),
                    "_params": params,
                    "status": "not started",
                }
            )
    return rows


def is_run(path: Path) -> bool:
    """A run's directory: Hydra's record of it or its metrics."""
    return (path / ".hydra").is_dir() or (path / "metrics.json").is_file()


def summarize(sweep_dir: str | Path, plot: bool = True, fits: bool = True) -> list[dict]:
    """Write summary.csv and summary.md for a sweep, and unless ``plot=False`` its figures:
    summary.png, curves.png and (``fits``) each group's fit with fits.png."""
    sweep_dir = Path(sweep_dir)
    jobs = sorted(  # a sweep's numbered jobs, or any set of single runs (logs/train/runs)
        (p for p in sweep_dir.iterdir() if p.is_dir() and (p.name.isdigit() or is_run(p))),
        key=lambda p: (0, int(p.name), "") if p.name.isdigit() else (1, 0, p.name),
    )
    rows = [read_job(j) for j in jobs]
    rows += _not_started(sweep_dir, rows)
    if not rows:
        return rows
    keys = {k for r in rows for k in r["_params"] if not k.startswith("search.")}
    swept = sorted(keys - _constant_keys(rows))
    columns = ["job", *swept, "status"] + [m for m in METRICS if any(m in r for r in rows)]
    if any(r.get("tags") for r in rows):
        columns.insert(columns.index("status") + 1, "tags")
    if all(r.get("test/loss") == r.get("test/mse") for r in rows):  # an MSE loss: the same
        columns = [c for c in columns if c != "test/loss"]
    columns += ["step", "wall_time_s", "error", "overrides"]
    table = [{c: (r["_params"].get(c) if c in swept else r.get(c)) for c in columns} for r in rows]
    with open_new(sweep_dir / "summary.csv", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(table)
    groups, group_columns = seed_groups(table, swept)
    with open_new(sweep_dir / "summary_groups.csv", newline="") as f:
        w = csv.DictWriter(f, fieldnames=group_columns)
        w.writeheader()
        w.writerows(groups)
    text = "## Jobs\n\n" + _markdown(table, columns[:-1])
    if any(g["n"] > 1 for g in groups):
        shown = [c for c in group_columns if not c.endswith(("/min", "/max"))]
        text += "\n## Over seeds (mean, sd)\n\n" + _markdown(groups, shown)
    write_text(sweep_dir / "summary.md", text)
    if plot:
        from gradlab.sweep.figures import plot_heatmap, plot_sweep, plot_sweep_curves

        varied = [k for k in swept if k != "seed"]
        plot_sweep(table, groups, varied, sweep_dir / "summary.png")
        curves = {r["job"]: read_curves(sweep_dir / r["job"]) for r in table}
        plot_sweep_curves(table, curves, varied, sweep_dir / "curves.png")
        plot_heatmap(groups, varied, sweep_dir / "heatmap.png")  # two swept keys: a grid
        if fits:  # each group's fit: <job>/plots/fit.png and fits.png
            from gradlab.sweep.fits import plot_fits

            plot_fits(sweep_dir, table, varied)
    return table


def _number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def seed_groups(table: list[dict], swept: list[str]) -> tuple[list[dict], list[str]]:
    """One row per group of jobs that differ only in ``seed``: the swept values, how many
    jobs (ok, diverged), and mean, sd, min, max of every final metric over the group."""
    import statistics

    keys = [k for k in swept if k != "seed"]
    metrics = [m for m in METRICS if any(r.get(m) is not None for r in table) and m in table[0]]
    by_key: dict[tuple, list[dict]] = {}
    for r in table:
        by_key.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    columns = [*keys, "n", "n_ok", "n_diverged"]
    columns += [f"{m}/{s}" for m in metrics for s in ("mean", "sd", "min", "max")]
    groups = []
    for values, rows in by_key.items():
        g = dict(zip(keys, values, strict=True))
        g["n"] = len(rows)
        g["n_ok"] = sum(r["status"] == "ok" for r in rows)
        g["n_diverged"] = sum(r["status"] == "diverged" for r in rows)
        for m in metrics:
            xs = [x for r in rows if r["status"] == "ok" and (x := _number(r.get(m))) is not None]
            if xs:
                g[f"{m}/mean"] = statistics.fmean(xs)
                g[f"{m}/sd"] = statistics.stdev(xs) if len(xs) > 1 else None  # blank for one
                g[f"{m}/min"], g[f"{m}/max"] = min(xs), max(xs)
        groups.append(g)
    return groups, columns


def _constant_keys(rows) -> set:
    keys = {k for r in rows for k in r["_params"]}
    return {k for k in keys if len({r["_params"].get(k) for r in rows}) == 1 and len(rows) > 1}


def _fmt(v) -> str:
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _markdown(table, columns) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in table]
    return "\n".join(lines) + "\n"


class SweepSummary(Callback):
    """Hydra callback: rewrite the sweep tables after every job (an interrupted sweep keeps
    them), and the tables and the plot at the end of the multirun."""

    def __init__(self) -> None:
        self.plot_every_job = False
        self.written = -1e9  # when the tables were last written (time.monotonic)
        self.cost = 0.0  # how long that took

    def on_multirun_start(self, config, **kwargs) -> None:
        global LAST_SWEEP_FAILED
        LAST_SWEEP_FAILED = None
        if mlflow_node(config) is not None:  # the sweep's parent run, its jobs nested in it
            start_sweep_run(config)
        if not str(config.hydra.sweeper["_target_"]).endswith(("BasicSweeper", "GridSweeper")):
            return  # a search decides its trials as it goes
        plan = plan_jobs(config)  # not empty: gradlab.pipeline.precheck refused that
        try:
            sweep = Path(config.hydra.sweep.dir)
            sweep.mkdir(parents=True, exist_ok=True)
            write_text(sweep / PLAN, json.dumps(plan))
        except Exception as e:  # noqa: BLE001 - a plan must never stop the sweep
            print(f"warning: sweep plan not written: {e}", file=sys.stderr)

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from hydra.core.utils import JobStatus

        # after a failed job Hydra ends the multirun without on_multirun_end: plot from here on
        if getattr(job_return, "status", None) == JobStatus.FAILED:
            self.plot_every_job = True
        # a summary reads every job so far: written at most once a second and after at least
        # ten times its own cost, so a sweep of many short jobs spends <= ~10% of its time here
        # (an interrupted sweep writes its summary itself; the end writes the final one)
        now = time.monotonic()
        if now - self.written < max(1.0, 10 * self.cost) and not self.plot_every_job:
            return
        try:
            sweep = config.hydra.sweep.dir
            if config.hydra.mode is not None and str(config.hydra.mode).endswith("MULTIRUN"):
                summarize(sweep, plot=self.plot_every_job, fits=False)  # fits: at the end
        except Exception as e:  # a summary must never fail the job
            print(f"warning: sweep summary not written: {e}", file=sys.stderr)
        self.written = time.monotonic()
        self.cost = self.written - now

    def on_multirun_end(self, config, **kwargs) -> None:
        global LAST_SWEEP_FAILED
        # fits drawn unless the jobs draw no figures (callbacks.figures=null)
        fits = bool((config.get("callbacks") or {}).get("figures"))
        table = summarize(config.hydra.sweep.dir, fits=fits)
        end_sweep_run(Path(config.hydra.sweep.dir))  # its summary as the parent run's files
        counts = Counter(r["status"] for r in table)
        where = Path(config.hydra.sweep.dir) / "summary.md"
        said = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        print(f"sweep summary: {len(table)} jobs ({said}) -> {where}")
        failed = [r["job"] for r in table if r["status"] not in ("ok", "diverged", "pruned")]
        if failed:
            LAST_SWEEP_FAILED = (
                f"{config.hydra.sweep.dir}: job(s) {', '.join(failed)} failed "
                "(their error.txt and summary.md say why)"
            )


LAST_SWEEP_FAILED: str | None = None  # set at the end of a sweep in this process


def failed_jobs_of_last_sweep() -> str | None:
    """A line naming the failed jobs of the sweep this process just ran (None if none)."""
    return LAST_SWEEP_FAILED
