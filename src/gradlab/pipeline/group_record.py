"""The files of a run trained in a batched group (``pipeline.group``), written by
the pipeline's own writers (``gradlab.pipeline.results``) as its solo run writes them:
history.csv, metrics.json, its logger runs, error.txt."""

import math
import os
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

from gradlab.callbacks.history import TrainingHistory, first_unlogged, write_history
from gradlab.instantiate import build
from gradlab.module.loss_history import is_log_step
from gradlab.pipeline import results
from gradlab.pipeline.build import build_loggers, has_callback, keeps_best
from gradlab.pipeline.process_state import run_dtype
from gradlab.safe_files import save_atomically


class GroupFiles:
    """What the jobs of one group share when their files are written: their configs as plain
    data (``ConfigsAsData``: ``template``, unresolved, and the batchable ``keys``), and one
    ModelCheckpoint to give each job's state (one built per job: ~2 ms each)."""

    def __init__(self, template: dict, keys: list[str]):
        from gradlab.pipeline.config_data import ConfigsAsData

        self.as_data = ConfigsAsData(template, keys)
        self.callback = None
        self.history = has_callback(template, TrainingHistory)  # the jobs write history.csv


def write_batched_job(cfg: DictConfig, outcome, label: str | None, swept: list[str],
                      group: GroupFiles | None = None):  # fmt: skip
    """Write one run's results into its job directory (its logger runs named ``label``, the
    ``swept`` keys first among their hyperparameters; ``group``: what its group's jobs
    share); return the sweep's metric."""
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for text in outcome.trace or []:  # callbacks.trace: as its solo run prints it
        print(text)
    if group.history if group else has_callback(cfg, TrainingHistory):  # (else none, as solo)
        write_history(out / "history.csv", outcome.history)
    saved = {"last": outcome.checkpoint, "best": outcome.best_checkpoint}
    if any(saved.values()):  # eval.py and ckpt_path= take them as a solo run's
        from gradlab.pipeline.config_data import config_as_data

        config = group.as_data(cfg) if group else config_as_data(cfg)
        states = checkpoint_callback_states(config, out, outcome, group)
        for name, ckpt in saved.items():
            if ckpt is not None:
                ckpt["gradlab"]["config"] = config
                ckpt["callbacks"] = {**ckpt["callbacks"], **states[name]}
                save_atomically(ckpt, out / "checkpoints" / f"{name}.ckpt")
    metrics = outcome.metrics
    results.write_metrics(out, metrics)
    if outcome.error is None:  # (a resumed job's old error ends here)
        (out / "error.txt").unlink(missing_ok=True)
    else:
        results.record_failure(out, outcome.error)  # as its solo run writes it
        if metrics["status"] != "interrupted":  # the sweep says that once, at its end
            print(f"error: {metrics['error']}", file=sys.stderr)
    loggers = build_loggers(cfg, label) if cfg.get("logger") else []
    log_curves(cfg, loggers, outcome, metrics, swept, label)
    return results.sweep_metric(cfg, metrics)


def checkpoint_callback_states(cfg: dict, out: Path, outcome, group=None) -> dict:
    """{"last": ..., "best": ...}: the state the run's ModelCheckpoint
    (``callbacks.model_checkpoint``) keeps in its solo run's last.ckpt and best.ckpt: its
    best score and file, so that a job resumed from its ``last.ckpt`` replaces its
    ``best.ckpt`` only with a better one, as the uninterrupted run does (``group``: one
    callback for a group's jobs, its directory set per job as it resolves its own). In
    best.ckpt, as saved at its validation: the score then, and at a run's first validation
    no last.ckpt path yet. ``cfg``: the job's config as plain data (``config_data``)."""
    metrics = outcome.metrics
    if not keeps_best(cfg):
        return {"last": {}, "best": {}}
    node = cfg["callbacks"]["model_checkpoint"]
    callback = group.callback if group else None
    if callback is None:
        callback = build("callbacks.model_checkpoint", node)
        if group:
            group.callback = callback
    callback.dirpath = os.path.realpath(os.path.expanduser(str(node["dirpath"])))
    dtype = run_dtype(cfg)
    if "val/loss_best" not in metrics:  # not validated yet: as the callback starts
        callback.best_model_score = callback.current_score = None
        callback.best_model_path = callback.kth_best_model_path = callback.last_model_path = ""
        worst = math.inf if node.get("mode", "min") == "min" else -math.inf
        callback.best_k_models, callback.kth_value = {}, torch.tensor(worst, dtype=dtype)
        state = {callback.state_key: callback.state_dict()}
        return {"last": state, "best": state}
    best_path, last = out / "checkpoints" / "best.ckpt", out / "checkpoints" / "last.ckpt"
    callback.best_model_score = torch.tensor(metrics["val/loss_best"], dtype=dtype)
    # its score at its latest save since it (re)started: with one kept checkpoint, the best
    # (none where a resumed run saved no better one: Lightning does not restore it)
    best = outcome.best_checkpoint
    callback.current_score = callback.best_model_score if best is not None else None
    callback.best_model_path = callback.kth_best_model_path = str(best_path)
    callback.kth_value = callback.best_model_score
    callback.best_k_models = {str(best_path): callback.best_model_score}
    callback.last_model_path = str(last)
    key, state = callback.state_key, callback.state_dict()
    first = best is not None and len(best["gradlab"]["val_history"]) == 1
    at_best = {"last_model_path": "" if first and not outcome.resumed_at else str(last)}
    return {"last": {key: state}, "best": {key: {**state, **at_best}}}


def log_curves(cfg: DictConfig, loggers, outcome, metrics: dict, swept, label) -> None:
    """The scalars a solo run logs, at the same steps and in the same order (a CSV logger's
    rows): val/* after the updates they follow, the learning rate as Lightning's
    LearningRateMonitor logs it (where the run has one) before its step's train/loss, its
    instruments' where they logged (``callbacks.per_run``: dead units at the train end),
    test/* at the end; then the hyperparameters and final values. A resumed run's: from where
    it resumed (its logger runs hold what came before)."""
    losses, first = outcome.history[:, 0].tolist(), outcome.resumed_at
    every, last = cfg.trainer.log_every_n_steps, cfg.trainer.max_steps
    end = len(losses)  # a diverged run's last losses: logged when it fails (history callback)
    if metrics["status"] == "diverged":
        end = max(first, first_unlogged(len(losses), every))
    names = [k for k in metrics if k.startswith("lr-")]  # (lr_monitor: as set, or scheduled)
    scheduled = outcome.rates or {}
    tests = {k: v for k, v in metrics.items() if k.startswith("test/")}
    recorded = outcome.recorder  # its instruments' (callbacks.per_run), where they logged
    for logger in loggers:
        validations = iter(outcome.validations)
        upcoming = next(validations, None)  # (updates done, its val/*)
        if recorded is not None:
            recorded.replay([logger], ("train_start", -1))
        for i, loss in enumerate(losses[first:], start=first):
            while upcoming is not None and upcoming[0] <= i:
                logger.log_metrics(upcoming[1], step=upcoming[0])
                upcoming = next(validations, None)
            if names and (i + 1) % every == 0 and i < end:
                logger.log_metrics(dict.fromkeys(names, scheduled.get(i, cfg.optim.lr)), step=i)
            if (is_log_step(i, every, last) or i == len(losses) - 1) and i < end:
                logger.log_metrics({"train/loss": loss}, step=i)
            if recorded is not None:  # at the end of update i
                recorded.replay([logger], ("batch_end", i))
        for n, values in [upcoming, *validations] if upcoming is not None else []:
            logger.log_metrics(values, step=n)
        for i, loss in enumerate(losses[end:], start=end):
            logger.log_metrics({"train/loss": loss}, step=i)
    if recorded is not None:  # its instruments' train end, then their figures at its fit end
        recorded.replay(loggers, ("train_end", -1))
        recorded.replay(loggers, ("fit_end", -1))
    for logger in loggers if tests else []:
        logger.log_metrics(tests, step=metrics["step"])  # as the solo run's test
    if loggers:
        results.log_results(cfg, loggers, metrics, first=swept, label=label)
