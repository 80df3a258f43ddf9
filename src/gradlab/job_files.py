"""The files of a run trained inside a batched sweep (``hydra/launcher=batched``), written as
its own run writes them: history.csv, metrics.json, its logger runs, error.txt."""

import json
import math
import sys
from pathlib import Path

from omegaconf import DictConfig


def write_batched_job(cfg: DictConfig, outcome):
    """Write one run's results into its job directory; return the sweep's metric."""
    from .train import build_loggers, log_results

    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    losses = outcome.history[:, 0].tolist()
    rows = ["step,loss"] + [f"{i},{v!r}" for i, v in enumerate(losses)]
    (out / "history.csv").write_text("\n".join(rows) + "\n")
    metrics = dict(outcome.metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    if metrics["status"] != "ok":
        (out / "error.txt").write_text(f"{metrics['status']}: {metrics['error']}\n")
        print(f"error: {metrics['error']}", file=sys.stderr)
    if cfg.get("logger"):
        loggers = build_loggers(cfg)
        every = cfg.trainer.log_every_n_steps
        steps = sorted({0, len(losses) - 1, *range(every - 1, len(losses), every)})
        for logger in loggers:
            for i in steps:
                logger.log_metrics({"train/loss": losses[i]}, step=i)
        log_results(cfg, loggers, metrics)
    metric = cfg.get("optimized_metric")
    if metrics["status"] == "diverged" and cfg.get("on_divergence") == "inf":
        return math.inf
    return metrics.get(metric) if metric else None
