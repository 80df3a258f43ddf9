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

from .config import (
    CONFIG_DIR,
    ConfigError,
    build,
    build_data,
    build_model,
    build_optimizer,
    configure_torch,
    one_line,
    print_config_tree,
    setup_resolvers,
    validate,
)

EXIT_CODES = {"ConfigError": 2, "DivergenceError": 3, "GradCheckError": 4, "CheckpointError": 2}


def build_module(cfg: DictConfig, model, data):
    from .lit import GradLabModule

    scheduler = build("scheduler", cfg.scheduler) if cfg.get("scheduler") else None
    try:
        return GradLabModule(
            model=model,
            optimizer=build_optimizer(cfg),
            loss=cfg.loss.name,
            scheduler=scheduler,
            grads=cfg.grads.mode,
            log_every_n_steps=cfg.trainer.log_every_n_steps,
            check_every_n_steps=cfg.grads.get("every_n_steps", 100),
            check_tol=cfg.grads.get("tol", 1e-4),
            max_updates=cfg.trainer.max_steps,
            task=data.task,
            num_classes=data.num_classes,
            **cfg.module,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from e


def updates_per_lightning_step(cfg: DictConfig) -> int:
    """K for element-wise optimizers; 1 for (L-)BFGS, whose every step is a whole minimization."""
    from hydra.utils import get_class

    from .lit import is_minimizer

    target = cfg.optim.get("_target_")
    if target and is_minimizer(get_class(target)):
        return 1
    return cfg.module.updates_per_step


def build_trainer(cfg: DictConfig, data, out: Path):

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
    steps = math.ceil(cfg.trainer.max_steps / updates_per_lightning_step(cfg))
    overrides = {
        "val_check_interval": max(1, min(int(cfg.trainer.val_check_interval), steps)),
        "limit_val_batches": None if data.val is not None else 0,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return build("trainer", cfg.trainer, callbacks=callbacks, logger=logger, **overrides), steps


def collect_metrics(metrics: dict) -> dict:
    out = {}
    for k, v in metrics.items():
        v = v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v
        if isinstance(v, int | float):
            out[k] = float(v)
    return out


def train(cfg: DictConfig) -> dict:
    validate(cfg)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.get("print_config"):
        print_config_tree(cfg)
    configure_torch(cfg)

    import lightning as L

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    generator = torch.Generator().manual_seed(cfg.seed)
    data = build_data(cfg, generator)  # data first, then weights, from one generator (notebook 000)
    data.to_dtype(torch.get_default_dtype())
    model = build_model(cfg, generator)
    module = build_module(cfg, model, data)
    module.run_config = {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        for k, v in cfg.items()
        if k != "hydra"
    }
    trainer, steps = build_trainer(cfg, data, out)
    data.set_steps(steps)

    ckpt = cfg.get("ckpt_path")
    if ckpt:
        from .evaluate import load_checkpoint

        load_checkpoint(ckpt)  # one-line error for a missing, corrupt or foreign file

    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=ckpt)
    wall = time.perf_counter() - start
    metrics = collect_metrics(trainer.callback_metrics)
    history = module.history()
    if len(history):
        metrics["train/loss"] = float(history[-1].nan_to_num(nan=math.inf).min())
    if data.test is not None and cfg.get("test", True):
        results = trainer.test(module, datamodule=data, verbose=False)
        metrics.update(collect_metrics(results[0] if results else {}))
    metrics.update(module.restart_summary())
    metrics.update(module.extra_metrics)
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
    _print_summary(module, metrics, out)
    return metrics


def _print_summary(module, metrics: dict, out: Path) -> None:
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
    lines.append(f"  steps          {metrics['step']}")
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
