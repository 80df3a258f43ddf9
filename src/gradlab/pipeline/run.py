"""The one run pipeline. Every entry point (``train.py``, ``eval.py``, ``gradlab.run``, the
gradient check, the batched launcher, benchmarks, tests) builds and records runs here:

    parts = assemble(cfg)           # check once, draw data and weights, module, trainer
    outcome = fit(parts)            # fit and test; a failure is captured, not raised
    record(parts, outcome)          # metrics.json, loggers' final values, the summary

The seed path, in one documented order: one ``torch.Generator`` seeded with ``seed`` draws
the data, then the weights (as notebook 000 does), then the validation set (so no notebook
number moves): ``draw``.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from gradlab.errors import ConfigError, GradlabError, OutputError, status_of
from gradlab.instantiate import build_model_shell
from gradlab.models.restarts import copy_into_restart
from gradlab.pipeline import results
from gradlab.pipeline.build import (
    build_data,
    build_makers,
    build_model,
    build_module,
    build_trainer,
)
from gradlab.pipeline.checkpoint_io import load_checkpoint, remove_stale_temporaries
from gradlab.pipeline.config_data import config_as_data
from gradlab.pipeline.process_state import torch_settings
from gradlab.pipeline.run_lock import lock_run_dir, unlock_run_dir
from gradlab.pipeline.signals import fit_until_stopped, signals_noted
from gradlab.pipeline.validate import (
    RESULT_FILES,
    announce,
    check_fresh_dir,
    check_model_fits_data,
    validate,
)


@dataclass
class RunParts:
    """What ``assemble`` builds: the config, its directory, data, module and trainer."""

    cfg: DictConfig
    out: Path
    data: object
    module: object
    trainer: object


@dataclass
class Outcome:
    """What ``fit`` returns: the run's final numbers and the failure it ended in, if any."""

    metrics: dict = field(default_factory=dict)
    error: BaseException | None = None


def draw(cfg: DictConfig, trusted: bool = True, makers=None):
    """(data, model) of a run: data first, then the weights, then the validation set, from
    one generator seeded with ``cfg.seed``; tensors in the default dtype. ``makers``: the
    (data, model) classes with their config's arguments bound (``build_makers``), for many
    runs of one data and model config: each called with the run's generator."""
    generator = torch.Generator().manual_seed(cfg.seed)
    if makers is None:
        data = build_data(cfg, generator, trusted)
        model = build_model(cfg, generator, trusted)
    else:
        data, model = makers[0](generator=generator), makers[1](generator=generator)
    data.draw_validation(generator)
    data.to_dtype(torch.get_default_dtype())
    return data, model


def draw_stacked(cfgs: list[DictConfig]):
    """(data of each run, one model holding every run's weights along a leading run
    dimension): each run drawn by ``draw`` exactly as its own run draws it."""
    first = draw(cfgs[0])  # built from its config (a mistake names its key), then the same
    makers = build_makers(cfgs[0])  # classes called with each run's generator: no rebuilding
    datas, models = zip(first, *(draw(c, makers=makers) for c in cfgs[1:]), strict=True)
    stacked = build_model_shell(cfgs[0].model, restarts=len(cfgs))
    for r, one in enumerate(models):
        copy_into_restart(stacked, r, one)
    return list(datas), stacked


def assemble(cfg: DictConfig) -> RunParts:
    """Check ``cfg`` and build its run (call inside ``torch_settings(cfg)``)."""
    import lightning as L

    validate(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    data, model = draw(cfg)
    module = build_module(cfg, model, data)
    check_model_fits_data(cfg, data, model, module.loss_fn)  # before the trainer and logger
    module.run_config = config_as_data(cfg)
    if not results.is_ddp_worker():
        announce(cfg)
    trainer = build_trainer(cfg, data)
    data.set_steps(cfg.trainer.max_steps)
    return RunParts(cfg, Path(cfg.paths.output_dir), data, module, trainer)


def fit(parts: RunParts) -> Outcome:
    """``trainer.fit`` (resuming from ``ckpt_path``), then ``trainer.test``; the failure is
    returned in the outcome so that the results get written. Ctrl-C and SIGTERM stop the run
    between two updates."""
    cfg, trainer, module, data = parts.cfg, parts.trainer, parts.module, parts.data
    ckpt = cfg.get("ckpt_path")
    if ckpt:
        check_resumable(load_checkpoint(ckpt), cfg, module)  # bad, foreign or finished
        own = parts.out / "checkpoints"  # only this run's own directory is cleaned
        if not own.is_symlink() and Path(ckpt).parent.resolve() == own.resolve():
            remove_stale_temporaries(own)
    last = parts.out / "checkpoints" / "last.ckpt"
    start = time.perf_counter()
    stopped_by, error = fit_until_stopped(trainer, module, data, ckpt)
    wall = time.perf_counter() - start
    if isinstance(error, OSError) and not isinstance(error, GradlabError):
        error = OutputError.of(error, parts.out)  # a full disk or a removed directory
    if stopped_by and module.updates >= trainer.max_steps:  # it came after the last update:
        print(f"{stopped_by} after the last update: writing the run's results first")
    elif stopped_by:
        error = results.interrupted(stopped_by, module.updates, last if last.is_file() else None)
    logged = dict(trainer.callback_metrics)
    if error is None and data.test is not None and cfg.get("test", True):
        tested = trainer.test(module, datamodule=data, verbose=False)
        logged.update(tested[0] if tested else {})
    end = results.final_metrics(module, wall, error)
    return Outcome(results.run_metrics(logged, end, module.loss_fn, data.train[1], cfg), error)


def record(parts: RunParts, outcome: Outcome) -> None:
    """metrics.json, the loggers' hyperparameters and final values, the printed summary
    (rank 0 only: other DDP processes leave the writing to it)."""
    if not parts.trainer.is_global_zero:
        return
    results.write_metrics(parts.out, outcome.metrics)
    results.log_results(parts.cfg, parts.trainer.loggers, outcome.metrics)
    if parts.cfg.get("print_summary", True):
        sums = results.sum_notes(parts.module.loss_fn, parts.data)
        results.print_summary(parts.module, outcome.metrics, parts.out, sums)


def train(cfg: DictConfig) -> tuple[dict, RunParts | None]:
    """Assemble, fit and record one run into ``cfg.paths.output_dir``; a failure is also
    written to ``error.txt`` there, then raised. Returns (metrics, parts)."""
    out = Path(cfg.paths.output_dir)
    if not results.is_ddp_worker():  # DDP ranks > 0 write into rank 0's directory
        # (.hydra/ may be there already: Hydra wrote it for this run)
        check_fresh_dir(out, "paths.output_dir", cfg.get("ckpt_path"), files=RESULT_FILES)
        lock_run_dir(out, "paths.output_dir")  # held already when train.py took it
    try:
        with torch_settings(cfg), signals_noted():  # a signal while writing: noted, not raised
            parts = assemble(cfg)
            out.mkdir(parents=True, exist_ok=True)
            if cfg.get("print_config"):
                results.print_start(cfg, parts.module)
            (out / "error.txt").unlink(missing_ok=True)  # a resumed run's old error ends here
            outcome = fit(parts)
            record(parts, outcome)
    except OSError as e:  # a full disk, a read-only or removed directory: name the file
        error = e if isinstance(e, GradlabError) else OutputError.of(e, out)
        results.record_failure(out, error)
        raise error from e
    except BaseException as e:
        if not isinstance(e, SystemExit) and status_of(e) != "pruned":
            results.record_failure(out, e)
        raise
    finally:
        unlock_run_dir(out)
    if outcome.error is not None:
        results.record_failure(out, outcome.error)
        raise outcome.error
    return outcome.metrics, parts


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
    check_same_run(ckpt["gradlab"].get("config") or {}, cfg)
    done = ckpt["gradlab"].get("updates", ckpt.get("global_step", 0))
    if done >= cfg.trainer.max_steps and results_written(Path(cfg.ckpt_path)):
        raise ConfigError(
            f"ckpt_path: that run already finished ({done} updates, trainer.max_steps="
            f"{cfg.trainer.max_steps}); raise trainer.max_steps to train it further"
        )
    if done >= cfg.trainer.max_steps:  # killed after its last update, before its results
        print(f"ckpt_path: all {done} updates done, results not written: completing the run")


RESUME_KEYS = ("seed", "restarts", "dtype", "data", "model", "loss", "optim", "grads")
"""What a resumed run must share with the run that wrote the checkpoint: its data (drawn
from ``seed``), its model (sizes, activation, init: what its weights mean), its loss, its
optimizer and its options (the checkpoint's optimizer state holds them: Lightning restores
them over the config's) and gradients."""


def check_same_run(saved: dict, cfg: DictConfig) -> None:
    """The checkpoint's config (data only, compared as plain values) agrees with this run's
    on ``RESUME_KEYS``; ``trainer`` and ``callbacks`` may change (more updates, say)."""
    theirs = _flat({k: saved[k] for k in RESUME_KEYS if k in saved})
    mine = _flat({k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k])
                  else cfg.get(k) for k in RESUME_KEYS if k in saved})  # fmt: skip
    for key in sorted(set(theirs) | set(mine)):
        there, here = theirs.get(key), mine.get(key)
        if there == here:
            continue
        raise ConfigError(
            f"{key}: the checkpoint was written with {there}, this run has {here}; resume with "
            f"{key.split('.')[0]} as it was (ckpt_path={cfg.ckpt_path}), or start a new run"
        )


def _flat(tree, prefix: str = "") -> dict:
    """{"optim": {"lr": 0.1}} -> {"optim.lr": 0.1}."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for k, v in tree.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def results_written(ckpt_path: Path) -> bool:
    """Whether the run that wrote ``<run>/checkpoints/<name>.ckpt`` finished writing its
    results (metrics.json with status ok, written after its final checkpoint)."""
    metrics = ckpt_path.resolve().parent.parent / "metrics.json"
    try:
        return json.loads(metrics.read_text()).get("status") == "ok"
    except (OSError, ValueError):
        return False
