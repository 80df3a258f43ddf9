"""What a run leaves: metrics.json, history.csv, the loggers' final values, error.txt and the
summary printed at the end. One writer for each, used by solo and batched runs alike."""

import json
import math
import os
from pathlib import Path

import torch
from omegaconf import DictConfig

from gradlab.errors import ConfigError, Interrupted, did_you_mean, error_line, status_of
from gradlab.safe_files import write_text

STATUS = {"diverged": "diverged", "interrupted": "interrupted", "pruned": "pruned"}  # else failed


def collect_metrics(metrics: dict) -> dict:
    """Plain floats from Lightning's metric dict (scalar tensors and numbers only)."""
    out = {}
    for k, v in metrics.items():
        v = v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v
        if isinstance(v, int | float):
            out[k] = float(v)
    return out


def final_metrics(module, wall: float, error: BaseException | None) -> dict:
    """The module's end-of-run numbers: final loss, restarts, instruments, step, status."""
    out = {}
    if module.updates:
        last = module.last_losses.nan_to_num(nan=math.inf, posinf=math.inf)
        out["train/loss"] = float(last.min())
    out.update(module.restart_summary())
    out.update(module.final_metrics)
    if module.is_minimizer:
        out["optim/iterations"] = module.minimizer_iterations
    return {**out, **end_of_run(module.updates, wall, error)}


def run_metrics(logged: dict, end: dict, loss_fn, train_targets, cfg: DictConfig) -> dict:
    """A run's metrics.json (solo or in a group): what it logged (``val/*``, ``test/*``,
    ``lr-*``), how it ended (``end``: ``final_metrics``), ``train/mse``, its tags."""
    metrics = {**collect_metrics(logged), **end}
    metrics.update(per_point(loss_fn, metrics, train_targets))
    return {**metrics, **run_tags(cfg)}


def end_of_run(step: int, wall: float, error: BaseException | None) -> dict:
    """How a run ended: its updates, wall time, status and error line (solo or in a group)."""
    out = {"step": step, "wall_time_s": wall}
    out["status"] = "ok" if error is None else STATUS.get(status_of(error), "failed")
    if error is not None:
        out["error"] = error_line(error)
    return out


def interrupted(stopped_by: str, step: int, last: Path | None) -> Interrupted:
    """A run's error where ``stopped_by`` (SIGINT, SIGTERM) stopped it after ``step``
    updates; ``last``: the last.ckpt it resumes from, if it has one."""
    resume = f"; resume with ckpt_path={last}" if last is not None else ""
    return Interrupted(f"{stopped_by}: run interrupted at step {step}{resume}")


def per_point(loss_fn, metrics: dict, train_targets) -> dict:
    """``train/mse`` beside a sum-of-squares ``train/loss`` (the sum over every training
    value): the per-point number that ``val/mse`` and ``test/mse`` are."""
    loss = metrics.get("train/loss")
    if loss_fn.name != "sse" or loss is None or not math.isfinite(loss):
        return {}
    return {"train/mse": loss / train_targets.numel()}


def sum_notes(loss_fn, data) -> dict:
    """For a loss summed over the points (``reduction: sum``), what each loss line is a sum
    over, for the summary: {"train": "sum over 2000 points", ...}."""
    if loss_fn.reduction != "sum":
        return {}
    sets = {"train": data.train, "val": data.val, "test": data.test}
    return {k: f"sum over {len(v[1])} points" for k, v in sets.items() if v is not None}


def run_tags(cfg: DictConfig) -> dict:
    """The run's ``tags`` as a metrics.json entry (summaries show them)."""
    return {"tags": [str(t) for t in cfg.tags]} if cfg.get("tags") else {}


def write_metrics(out: Path, metrics: dict) -> None:
    """metrics.json as strict JSON: a non-finite value is ``null`` (its ``status`` and
    ``error`` say why: a diverged run, diverged restarts)."""
    out.mkdir(parents=True, exist_ok=True)
    strict = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()
    }
    write_text(out / "metrics.json", json.dumps(strict, indent=2, sort_keys=True, allow_nan=False))


def log_results(
    cfg: DictConfig, loggers: list, metrics: dict, first: list | None = None, label=None
) -> None:
    """Hyperparameters (the swept keys first: ``first``, by default the running sweep's) and
    final metrics to every logger (``label``: a sweep job's name, by default the running
    job's)."""
    import yaml
    from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger

    from gradlab.pipeline.hparams import flat_hparams
    from gradlab.pipeline.mlflow_runs import log_run_files, run_files
    from gradlab.sweep_plan import run_label, swept_keys

    swept = swept_keys() if first is None else first
    hparams = flat_hparams(cfg, first=swept)
    # final values other than the curves already logged (train/*, val/*, test/*): no copies
    curves = ("train/", "val/", "test/")
    numbers = {
        k: v for k, v in metrics.items() if isinstance(v, float) and not k.startswith(curves)
    }
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):  # the HPARAMS tab: parameters and results
            logger.log_hyperparams(hparams, {})  # (no scalars written)
            # hparams.yaml: the logger writes it once, with the module's (none) at the start
            text = yaml.safe_dump(hparams, sort_keys=False, allow_unicode=True)
            write_text(Path(logger.log_dir) / logger.NAME_HPARAMS_FILE, text)
            name = session_name(cfg, label or run_label())
            hparams_session(logger, hparams, metrics, swept, name)
        elif isinstance(logger, MLFlowLogger | WandbLogger):  # tags are the tracker's tags
            logger.log_hyperparams({k: v for k, v in hparams.items() if k != "tags"})
            logger.log_metrics(numbers, step=metrics["step"])
            out = Path(cfg.paths.output_dir)
            if isinstance(logger, MLFlowLogger):
                log_run_files(logger, out)
            else:  # W&B: the files saved with the run; finished, so a sweep's next is its own
                for path in run_files(out):
                    logger.experiment.save(str(path), base_path=str(out), policy="now")
                logger.experiment.finish()
        else:
            logger.log_hyperparams(hparams)
            logger.log_metrics(numbers, step=metrics["step"])
        logger.finalize("success" if metrics["status"] == "ok" else "failed")


def session_name(cfg: DictConfig, label: str | None) -> str:
    """A run's name in TensorBoard's HPARAMS tab: ``<task>/<swept values>`` for a sweep's
    job (``label``: ``wave1d/sizes=[1,10,1],seed=2``), ``<task>/<its directory>`` else."""
    return f"{cfg.task_name}/{label or Path(cfg.paths.output_dir).name}"


def hparams_session(logger, hparams: dict, metrics: dict, swept: list, name: str) -> None:
    """TensorBoard's HPARAMS entry for the run, named ``name``: the keys its sweep varies and
    the few that define a run (``session_hparams``), and as its metrics the curves the run
    logged (train/*, val/*, test/*: the tab shows their last values), so no ``hparam/*``
    copies appear as cards of their own. No experiment summary is written: TensorBoard then
    builds it from every run it serves, the keys whose values differ first. Written to an
    event file of its own in the run's directory (TensorBoard reads them as one run)."""
    from tensorboard.plugins.hparams import plugin_data_pb2
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    from gradlab.pipeline.hparams import session_hparams

    values = {k: v if isinstance(v, int | float | str | bool) else str(v)
              for k, v in session_hparams(hparams, swept).items()}  # fmt: skip
    curves = {
        k: v for k, v in metrics.items()
        if isinstance(v, float) and k.startswith(("train/", "val/", "test/"))
    }  # fmt: skip
    _, start, end = hparams_summary(values, curves)
    content = start.value[0].metadata.plugin_data  # the session's name: its group's
    data = plugin_data_pb2.HParamsPluginData.FromString(content.content)
    data.session_start_info.group_name = name
    content.content = data.SerializeToString()
    with SummaryWriter(log_dir=logger.log_dir) as writer:
        for summary in (start, end):
            writer.file_writer.add_summary(summary)


def print_start(cfg: DictConfig, module) -> None:
    from gradlab.pipeline.compose import print_config_tree

    print_config_tree(cfg)
    n = sum(p.numel() for p in module.model.parameters())
    print(f"model: {type(module.model).__name__} with {n} parameters")


def print_summary(module, metrics: dict, out: Path, sums: dict | None = None) -> None:
    """The end-of-run summary; ``sums``: what a summed loss is a sum over (``sum_notes``)."""
    describe = getattr(module.model, "describe", None)
    lines = ["", "Summary"]
    for key in ("train/loss", "train/mse", "val/loss_best", "test/mse", "test/r2", "test/acc",
                "test/loss"):  # fmt: skip
        if key in metrics:
            note = (sums or {}).get(key.split("/")[0]) if key.endswith(("/loss", "_best")) else None
            lines.append(f"  {key:<14} {metrics[key]:.6g}" + (f"  ({note})" if note else ""))
    for key in ("restarts/best_loss", "restarts/median_loss", "restarts/worst_loss"):
        if key in metrics:
            lines.append(f"  {key:<14} {metrics[key]:.6g}")
    if metrics.get("restarts/n_diverged"):
        lines.append(f"  restarts       {metrics['restarts/n_diverged']} diverged")
    if callable(describe):
        lines.append(f"  model          {describe(module.best_restart)}")
    lines += [f"  {line}" for line in module.summary_lines]
    unit = "iterations" if module.is_minimizer else "steps"
    lines.append(f"  {unit:<14} {metrics['step']}")
    lines.append(f"  wall time      {metrics['wall_time_s']:.2f} s")
    lines.append(f"  run directory  {out}")
    print("\n".join(lines))


def record_failure(out: Path, e: BaseException) -> None:
    """error.txt in the run directory (metrics.json, if training started, has the rest)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "error.txt", f"{status_of(e)}: {error_line(e)}\n")
    except OSError:
        pass


def is_ddp_worker() -> bool:
    """A DDP process of rank > 0, which runs in rank 0's directory: one Lightning started
    (LOCAL_RANK), or a task of ``srun --ntasks=N`` other than the first (SLURM_PROCID)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("SLURM_PROCID", "0") != "0"


def sweep_metric(cfg: DictConfig, metrics: dict):
    """The value handed to a sweeper: ``optimized_metric`` of a finished run; a run without
    that metric (no validation set: no ``val/*``) hands ``fallback_metric`` instead, with a
    line saying so. A diverged run hands inf under ``on_divergence=inf``; others nothing."""
    status = metrics.get("status", "ok")
    if status == "diverged" and cfg.get("on_divergence") == "inf":
        return math.inf
    metric = cfg.get("optimized_metric")
    if not metric or status != "ok":
        return None
    if metric in metrics:
        return metrics[metric]
    fallback = cfg.get("fallback_metric")
    no_validation = not any(k.startswith("val/") for k in metrics)
    if metric.startswith("val/") and no_validation and fallback in metrics:
        print(
            f"optimized_metric: this run has no validation set ({metric} missing); "
            f"the sweeper gets {fallback} (fallback_metric)"
        )
        return metrics[fallback]
    raise ConfigError(
        f"optimized_metric: {metric!r} is not a metric of this run{did_you_mean(metric, metrics)}"
    )
