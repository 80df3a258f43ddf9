"""Evaluate a checkpoint on its run's test set: ``python eval.py ckpt_path=PATH``.

The checkpoint carries the composed config of the run that wrote it, so the same
data set and model are rebuilt; metrics go to ``metrics.json`` in the eval run directory.
"""

import json
import sys
import traceback
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from .checkpoint_io import load_checkpoint
from .config import (
    CONFIG_DIR,
    build_data,
    build_model,
    build_optimizer,
    collect_metrics,
    compose_command_line,
    setup_hydra,
    torch_settings,
)
from .errors import (
    ConfigError,
    error_line,
    exit_code,
    hydra_errors_raise,
    reported_errors,
    show_traceback,
)


def evaluate(cfg: DictConfig) -> dict:
    ckpt = load_checkpoint(cfg.ckpt_path)
    run_cfg = OmegaConf.create(ckpt["gradlab"]["config"])
    with torch_settings(run_cfg):  # the run's dtype and threads, restored afterwards
        return evaluate_checkpoint(cfg, run_cfg, ckpt)


def evaluate_checkpoint(cfg: DictConfig, run_cfg: DictConfig, ckpt: dict) -> dict:
    """Rebuild the run's data and model as they were trained, load the weights, test."""
    import lightning as L

    from .lit import GradLabModule

    generator = torch.Generator().manual_seed(run_cfg.seed)
    data = build_data(run_cfg, generator)
    data.to_dtype(torch.get_default_dtype())
    model = build_model(run_cfg, generator)
    module = GradLabModule(
        model=model,
        optimizer=build_optimizer(run_cfg),
        loss=run_cfg.loss.name,
        task=data.task,
        num_classes=data.num_classes,
    )
    module.load_state_dict(ckpt["state_dict"])
    module.on_load_checkpoint(ckpt)
    if data.test is None:
        raise ConfigError(f"ckpt_path: the run's data set ({type(data).__name__}) has no test set")
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=cfg.paths.output_dir,
    )
    results = trainer.test(module, datamodule=data, verbose=False)
    metrics = collect_metrics(results[0])
    metrics["step"] = ckpt["gradlab"].get("updates", ckpt.get("global_step", 0))
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    for k, v in sorted(metrics.items()):
        print(f"  {k:<10} {v:.6g}")
    print(f"  metrics written to {out / 'metrics.json'}")
    return metrics


setup_hydra()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def hydra_main(cfg: DictConfig):
    try:
        evaluate(cfg)
    except Exception as e:  # noqa: BLE001 - every failure: one line and its exit code
        if show_traceback():
            traceback.print_exc()
        print(f"error: {error_line(e)}", file=sys.stderr)
        raise SystemExit(exit_code(e)) from None


def precheck(argv: list[str]) -> None:
    cfg = compose_command_line(argv, config_name="eval")
    if cfg is None:
        return
    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise ConfigError(
            "ckpt_path: required; python eval.py ckpt_path=RUN_DIR/checkpoints/last.ckpt"
        )
    load_checkpoint(cfg.ckpt_path)


def main() -> None:
    """``python eval.py ckpt_path=PATH``: check the checkpoint, then test it through Hydra."""
    with reported_errors():
        precheck(sys.argv[1:])
        hydra_errors_raise()
        hydra_main()


if __name__ == "__main__":
    main()
