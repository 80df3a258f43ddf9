"""Train one model as the composed Hydra config says; write metrics.json to the run directory.

python train.py                              # MLP 2-3-4-1 on sin(x1) + 2 cos(x2)
python train.py experiment=legendre grads=manual
python train.py -m model.sizes='[2,2,1]','[2,10,1]' optim.lr=0.1,0.05
"""

import json
import math
import sys
import time
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .checkpoint_io import load_checkpoint
from .config import (
    CONFIG_DIR,
    ConfigError,
    build,
    build_data,
    build_model,
    build_module,
    collect_metrics,
    one_line,
    print_config_tree,
    setup_resolvers,
    torch_settings,
    validate,
)

EXIT_CODES = {"ConfigError": 2, "DivergenceError": 3, "GradCheckError": 4, "CheckpointError": 2}


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
    logger = build("logger", cfg.logger) if has_logger else False
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


def train(cfg: DictConfig) -> dict:
    """Build data, model, module and trainer from ``cfg``; fit, test, write metrics.json."""
    validate(cfg)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.get("print_config"):
        print_config_tree(cfg)
    with torch_settings(cfg):
        return fit_and_test(cfg, out)


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
    module.run_config = {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        for k, v in cfg.items()
        if k != "hydra"
    }
    trainer = build_trainer(cfg, data)
    data.set_steps(cfg.trainer.max_steps)
    return data, module, trainer


def fit_and_test(cfg: DictConfig, out: Path) -> dict:
    data, module, trainer = build_run(cfg)
    if cfg.get("print_config"):
        n = sum(p.numel() for p in module.model.parameters())
        print(f"model: {type(module.model).__name__} with {n} parameters")

    ckpt = cfg.get("ckpt_path")
    if ckpt:
        load_checkpoint(ckpt)  # one-line error for a missing, corrupt or foreign file

    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=ckpt)
    wall = time.perf_counter() - start
    metrics = collect_metrics(trainer.callback_metrics)
    if module.updates:
        metrics["train/loss"] = float(
            module.last_losses.nan_to_num(nan=math.inf, posinf=math.inf).min()
        )
    if data.test is not None and cfg.get("test", True):
        results = trainer.test(module, datamodule=data, verbose=False)
        metrics.update(collect_metrics(results[0] if results else {}))
    metrics.update(module.restart_summary())
    metrics.update(module.final_metrics)
    if module.is_minimizer:
        metrics["optim/iterations"] = module.minimizer_iterations
    metrics["step"] = module.updates
    metrics["wall_time_s"] = wall
    if not trainer.is_global_zero:  # other DDP processes leave the writing to rank 0
        return metrics
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    if trainer.logger is not None and hasattr(trainer.logger, "log_hyperparams"):
        from .hparams import flat_hparams

        trainer.logger.log_hyperparams(
            flat_hparams(cfg), {f"hparam/{k}": v for k, v in metrics.items()}
        )
        trainer.logger.finalize("success")
    print_summary(module, metrics, out)
    return metrics


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
    """Run ``train``; bad input and failed runs end in one line on stderr and a non-zero exit."""
    try:
        metrics = train(cfg)
    except Exception as e:
        kind = type(e).__name__
        message = f"error: {one_line(e)}"
        try:
            out = Path(cfg.paths.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            (out / "error.txt").write_text(f"{kind}: {one_line(e)}\n")
        except Exception:
            pass
        print(message, file=sys.stderr)
        if kind == "DivergenceError" and cfg.get("on_divergence") == "inf":
            return math.inf  # a search records the diverged trial as infinitely bad, and goes on
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise RuntimeError(one_line(e)) from None  # Hydra records the job as failed
        raise SystemExit(EXIT_CODES.get(kind, 1)) from None
    metric = cfg.get("optimized_metric")
    return metrics.get(metric) if metric else None


setup_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def main(cfg: DictConfig):
    return run_task(cfg)


if __name__ == "__main__":
    main()
