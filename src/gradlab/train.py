"""Train one model as the composed Hydra config says; write metrics.json to the run directory.

python train.py                              # MLP 2-3-4-1 on sin(x1) + 2 cos(x2)
python train.py experiment=legendre grads=manual
python train.py -m model.sizes='[2,2,1]','[2,10,1]' optim.lr=0.1,0.05
"""

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .checkpoint_io import load_checkpoint, remove_stale_temporaries
from .checks import RESULT_FILES, check_fresh_dir, check_model_fits_data, validate
from .config import (
    CONFIG_DIR,
    build,
    build_data,
    build_model,
    build_module,
    collect_metrics,
    compose_command_line,
    print_config_tree,
    setup_hydra,
    torch_settings,
)
from .errors import (
    EXIT_CODES,
    ConfigError,
    Interrupted,
    error_line,
    exit_code,
    hydra_errors_raise,
    reported_errors,
    show_traceback,
    status_of,
)


def build_trainer(cfg: DictConfig, data):
    """The Trainer with the config's callbacks and logger; every interval counts updates."""
    callbacks = []
    has_logger = bool(cfg.get("logger")) and not cfg.trainer.get("fast_dev_run")
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None or "_target_" not in node:
            continue
        if name == "lr_monitor" and not has_logger:
            continue
        if name == "model_checkpoint" and data.val is None:
            node = OmegaConf.merge(node, {"monitor": None, "filename": "step{step}"})
        callbacks.append(build(f"callbacks.{name}", node))
    if cfg.search.trial is not None:  # a search's trial: report val/loss, stop if pruned
        from .callbacks.search import TrialPruning

        callbacks.append(TrialPruning(cfg.search.storage, cfg.search.study, cfg.search.trial))
    logger = (build_loggers(cfg) if has_logger else None) or False
    # the training feed yields the full batch max_steps times: an int val_check_interval
    # counts updates (clamped to the run), a float is a fraction of the run
    interval, steps = cfg.trainer.val_check_interval, cfg.trainer.max_steps
    if isinstance(interval, float):
        if not 0 < interval <= 1:
            raise ConfigError(
                f"trainer.val_check_interval: a float is a fraction of the run in (0, 1], "
                f"got {interval}"
            )
        interval = round(interval * steps)
    if isinstance(interval, int):
        interval = max(1, min(interval, steps))
    overrides = {"val_check_interval": interval}
    if data.val is None:
        overrides["limit_val_batches"] = 0
    return build("trainer", cfg.trainer, callbacks=callbacks, logger=logger, **overrides)


def build_loggers(cfg: DictConfig) -> list:
    """The configured loggers; a sweep job's TensorBoard/CSV run is named by its swept values."""
    from .summarize import run_label

    loggers = []
    label = run_label()
    for name, node in (cfg.get("logger") or {}).items():
        if node is None or "_target_" not in node:
            continue
        extra = {"version": label} if label and "version" in node else {}
        loggers.append(build(f"logger.{name}", node, **extra))
    return loggers


def train(cfg: DictConfig) -> dict:
    """Build data, model, module and trainer from ``cfg``; fit, test, write metrics.json.
    A failure is written to ``error.txt`` in the run directory, then raised."""
    metrics, _, _ = run_training(cfg)
    return metrics


def run_training(cfg: DictConfig):
    """``train``, returning (metrics, data module, trained LightningModule)."""
    out = Path(cfg.paths.output_dir)
    found = [f for f in RESULT_FILES if (out / f).exists()]
    if found and not is_ddp_worker():  # .hydra/ is there already: Hydra wrote it for this run
        raise ConfigError(
            f"paths.output_dir: {out} holds another run's results ({', '.join(found)}); "
            "choose a new directory"
        )
    try:
        validate(cfg)
        out.mkdir(parents=True, exist_ok=True)
        with torch_settings(cfg):
            return fit_and_test(cfg, out)
    except BaseException as e:
        if not isinstance(e, SystemExit) and status_of(e) != "pruned":
            record_failure(out, e)
        raise


def build_run(cfg: DictConfig):
    """(data, module, trainer) of a run, seeded: data first, then the weights, from one
    generator (notebook 000), then the validation set (so no notebook number moves)."""
    import lightning as L

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    generator = torch.Generator().manual_seed(cfg.seed)
    data = build_data(cfg, generator)
    model = build_model(cfg, generator)
    data.draw_validation(generator)
    data.to_dtype(torch.get_default_dtype())
    module = build_module(cfg, model, data)
    check_model_fits_data(cfg, data, model, module.loss_fn)  # before the trainer and logger
    module.run_config = {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        for k, v in cfg.items()
        if k != "hydra"
    }
    trainer = build_trainer(cfg, data)
    data.set_steps(cfg.trainer.max_steps)
    return data, module, trainer


def fit_and_test(cfg: DictConfig, out: Path) -> tuple:
    """Fit and test; whatever happens, write metrics.json (with ``status``), the history, the
    plots and the last finite checkpoint, then raise the failure if there was one."""
    data, module, trainer = build_run(cfg)
    if cfg.get("print_config"):
        print_config_tree(cfg)
        n = sum(p.numel() for p in module.model.parameters())
        print(f"model: {type(module.model).__name__} with {n} parameters")
    ckpt = cfg.get("ckpt_path")
    if ckpt:
        check_resumable(load_checkpoint(ckpt), cfg, module)  # bad, foreign or finished
        remove_stale_temporaries(Path(ckpt).parent)

    start = time.perf_counter()
    error = fit(trainer, module, data, ckpt, out)
    wall = time.perf_counter() - start
    metrics = collect_metrics(trainer.callback_metrics)
    if module.updates:
        metrics["train/loss"] = float(
            module.last_losses.nan_to_num(nan=math.inf, posinf=math.inf).min()
        )
    if error is None and data.test is not None and cfg.get("test", True):
        results = trainer.test(module, datamodule=data, verbose=False)
        metrics.update(collect_metrics(results[0] if results else {}))
    metrics.update(module.restart_summary())
    metrics.update(module.final_metrics)
    if module.is_minimizer:
        metrics["optim/iterations"] = module.minimizer_iterations
    metrics["step"] = module.updates
    metrics["wall_time_s"] = wall
    metrics["status"] = "ok" if error is None else STATUS.get(status_of(error), "failed")
    if error is not None:
        metrics["error"] = error_line(error)
    if trainer.is_global_zero:  # other DDP processes leave the writing to rank 0
        write_results(cfg, trainer, module, metrics, out)
    if error is not None:
        raise error
    return metrics, data, module


STATUS = {"diverged": "diverged", "interrupted": "interrupted", "pruned": "pruned"}  # else failed


def fit(trainer, module, data, ckpt, out: Path) -> BaseException | None:
    """``trainer.fit``; returns the failure instead of raising it, so results get written.
    Ctrl-C and SIGTERM stop the run between two updates."""
    from .signals import stop_between_updates

    last = out / "checkpoints" / "last.ckpt"
    with stop_between_updates(trainer) as stop:
        try:
            trainer.fit(module, datamodule=data, ckpt_path=ckpt)
        except SystemExit:  # Lightning ends Ctrl-C with sys.exit(1), SIGTERM with a SystemExit
            if not trainer.interrupted:
                raise
            stop.signal = "SIGTERM" if trainer.received_sigterm else stop.signal or "SIGINT"
        except Exception as e:  # noqa: BLE001 - reported after the results are written
            return e
    if stop.signal:
        resume = f"; resume with ckpt_path={last}" if last.is_file() else ""
        return Interrupted(f"{stop.signal}: run interrupted at step {module.updates}{resume}")
    return None


def check_resumable(ckpt: dict, cfg: DictConfig, module) -> None:
    """The checkpoint fits this run's model and has updates left to do."""
    ours = module.state_dict()
    for name, value in ckpt["state_dict"].items():
        if name not in ours or ours[name].shape != value.shape:
            here = tuple(ours[name].shape) if name in ours else "no such parameter"
            raise ConfigError(
                f"ckpt_path: written by another model ({name}: {tuple(value.shape)} there, "
                f"{here} here); resume with the model that wrote it"
            )
    done = ckpt["gradlab"].get("updates", ckpt.get("global_step", 0))
    if done >= cfg.trainer.max_steps:
        raise ConfigError(
            f"ckpt_path: that run already finished ({done} updates, trainer.max_steps="
            f"{cfg.trainer.max_steps}); raise trainer.max_steps to train it further"
        )


def log_results(cfg: DictConfig, loggers: list, metrics: dict) -> None:
    """Hyperparameters (the swept keys first) and final metrics to every logger."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from .hparams import flat_hparams
    from .summarize import swept_keys

    hparams = flat_hparams(cfg, first=swept_keys())
    numbers = {f"hparam/{k}": v for k, v in metrics.items() if isinstance(v, float)}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):  # the HPARAMS tab: parameters and results
            logger.log_hyperparams(hparams, numbers)
        else:
            logger.log_hyperparams(hparams)
            logger.log_metrics(numbers, step=metrics["step"])
        logger.finalize("success" if metrics["status"] == "ok" else "failed")


def write_results(cfg: DictConfig, trainer, module, metrics: dict, out: Path) -> None:
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    log_results(cfg, trainer.loggers, metrics)
    print_summary(module, metrics, out)


def print_summary(module, metrics: dict, out: Path) -> None:
    describe = getattr(module.model, "describe", None)
    lines = ["", "Summary"]
    for key in ("train/loss", "val/loss_best", "test/mse", "test/r2", "test/acc", "test/loss"):
        if key in metrics:
            lines.append(f"  {key:<14} {metrics[key]:.6g}")
    for key in ("restarts/best_loss", "restarts/median_loss", "restarts/worst_loss"):
        if key in metrics:
            lines.append(f"  {key:<14} {metrics[key]:.6g}")
    if callable(describe):
        lines.append(f"  model          {describe(module.best_restart)}")
    lines += [f"  {line}" for line in module.summary_lines]
    unit = "iterations" if module.is_minimizer else "steps"
    lines.append(f"  {unit:<14} {metrics['step']}")
    lines.append(f"  wall time      {metrics['wall_time_s']:.2f} s")
    lines.append(f"  run directory  {out}")
    print("\n".join(lines))


def run_task(cfg: DictConfig):
    """The Hydra task: ``train``, with every failure ending in one ``error:`` line. A single
    run exits with the failure's code; a sweep job records its failure and the sweep goes on
    (the sweep's end names the failed jobs), except on Ctrl-C, which stops the sweep."""
    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun and uses_ddp(cfg):
        return run_job_in_own_process(cfg)
    try:
        metrics = train(cfg)
        metric = cfg.get("optimized_metric")
        if metric and metrics.get(metric) is None and multirun:
            from .errors import did_you_mean

            raise ConfigError(
                f"optimized_metric: {metric!r} is not a metric of this run"
                f"{did_you_mean(metric, metrics)}"
            )
        return metrics.get(metric) if metric else None
    except BaseException as e:
        if isinstance(e, SystemExit):
            raise
        if isinstance(e, ConfigError) and str(e).startswith("optimized_metric"):
            record_failure(Path(cfg.paths.output_dir), e)
        if show_traceback():
            traceback.print_exc()
        if status_of(e) == "pruned":  # a search's answer, not a failure
            print(error_line(e))
            return None
        print(f"error: {error_line(e)}", file=sys.stderr)
        if multirun and isinstance(e, KeyboardInterrupt):
            from .summarize import summarize

            summarize(HydraConfig.get().sweep.dir, plot=False)  # every job listed, this one too
        if multirun and not isinstance(e, KeyboardInterrupt):
            diverged = status_of(e) == "diverged"
            return math.inf if diverged and cfg.get("on_divergence") == "inf" else None
        raise SystemExit(exit_code(e)) from None


def uses_ddp(cfg: DictConfig) -> bool:
    strategy = str(cfg.trainer.get("strategy", "auto"))
    devices = cfg.trainer.get("devices", 1)
    return strategy.startswith("ddp") or (isinstance(devices, int) and devices > 1)


def run_job_in_own_process(cfg: DictConfig):
    """A DDP job of a sweep runs as a single run in a process of its own: Lightning restarts
    the script for its workers, which in this process would run the whole sweep again."""
    import subprocess

    out = Path(cfg.paths.output_dir)
    command = [sys.executable, "-m", "gradlab.train", *HydraConfig.get().overrides.task]
    command += ["hydra.mode=RUN", f"hydra.run.dir={out}", "hydra.output_subdir=null"]
    env = dict(os.environ, GRADLAB_SWEEP_JOB="1")  # the directory is this job's own
    code = subprocess.run(command, env=env).returncode
    if code == EXIT_CODES["interrupted"]:
        raise Interrupted(f"job {out.name} interrupted")
    metrics_file = out / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if metrics.get("status") == "diverged" and cfg.get("on_divergence") == "inf":
        return math.inf
    metric = cfg.get("optimized_metric")
    return metrics.get(metric) if metric and code == 0 else None


def record_failure(out: Path, e: BaseException) -> None:
    """error.txt in the run directory (metrics.json, if training started, has the rest)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "error.txt").write_text(f"{status_of(e)}: {error_line(e)}\n")
    except OSError:
        pass


setup_hydra()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def hydra_main(cfg: DictConfig):
    return run_task(cfg)


def precheck(argv: list[str]) -> None:
    """Compose and check the command line's config before Hydra starts the run (and writes
    into its directory): config mistakes end in one line within a second or two."""
    cfg = compose_command_line(argv)
    if cfg is None:
        return
    validate(cfg, full=False)
    explicit = any(a.startswith("hydra.run.dir=") for a in argv)
    own = os.environ.get("GRADLAB_SWEEP_JOB") == "1"  # a sweep's DDP job: Hydra made the dir
    if explicit and cfg.hydra.mode != RunMode.MULTIRUN and not is_ddp_worker() and not own:
        run_dir = Path(cfg.hydra.run.dir)
        check_fresh_dir(run_dir, "hydra.run.dir")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"hydra.run.dir: cannot create {run_dir}: {e.strerror}") from None
        if not os.access(run_dir, os.W_OK):
            raise ConfigError(f"hydra.run.dir: {run_dir} is not writable")


def is_ddp_worker() -> bool:
    """A process Lightning started for DDP rank > 0 (it runs in rank 0's directory)."""
    return os.environ.get("LOCAL_RANK", "0") != "0"


def main() -> None:
    """``python train.py``: check, then run (or sweep) through Hydra."""
    with reported_errors():
        precheck(sys.argv[1:])
        hydra_errors_raise()
        hydra_main()
    from .summarize import failed_jobs_of_last_sweep

    failed = failed_jobs_of_last_sweep()
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
