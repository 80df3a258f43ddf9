"""Evaluate a checkpoint on its run's test set: ``python eval.py ckpt_path=PATH``.

The checkpoint carries the composed config of the run that wrote it (plain data): the run's
data are drawn again through the pipeline's seed path, and the module is restored with
``GradLabModule.load_from_checkpoint``. Nothing read from the file selects code: only
gradlab's own data, model and optimizer classes are built from it, looked up by name.
Metrics go to ``metrics.json`` in the eval run's own directory.
"""

import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gradlab.errors import CheckpointError, ConfigError
from gradlab.pipeline import results
from gradlab.pipeline.checkpoint_io import load_checkpoint
from gradlab.pipeline.process_state import torch_settings
from gradlab.pipeline.ranges import check_ranges
from gradlab.pipeline.run import draw
from gradlab.pipeline.validate import check_fresh_dir


def stored_config(ckpt: dict, path) -> DictConfig:
    """The run's config from a checkpoint: plain values only (no interpolation runs)."""
    stored = ckpt["gradlab"].get("config")
    if not isinstance(stored, dict) or "${" in repr(stored):
        raise CheckpointError(
            f"ckpt_path: {path} holds no plain run config (missing, or with interpolations)"
        )
    cfg = OmegaConf.create(stored)
    if cfg.get("dtype") not in ("float32", "float64") or not isinstance(cfg.get("seed"), int):
        raise CheckpointError(f"ckpt_path: {path}: its config's dtype or seed is not valid")
    try:  # the value checks and the memory estimate of a run, before anything is drawn
        check_ranges(cfg)
    except ConfigError as e:
        raise CheckpointError(f"ckpt_path: {path}: its config: {e}") from None
    return cfg


def evaluate(cfg: DictConfig) -> dict:
    """Test the checkpoint ``cfg.ckpt_path``; write and return its metrics."""
    import lightning as L

    from gradlab.module import GradLabModule

    path = Path(cfg.ckpt_path)
    out = Path(cfg.paths.output_dir)
    check_fresh_dir(out, "hydra.run.dir", files=("metrics.json", "checkpoints"))
    ckpt = load_checkpoint(path)
    run_cfg = stored_config(ckpt, path)
    with torch_settings(run_cfg):  # the run's dtype and threads, restored afterwards
        data, model = draw(run_cfg, trusted=False)
        module = GradLabModule.load_from_checkpoint(
            path, map_location="cpu", weights_only=True, net=model
        )
        trainer = L.Trainer(
            accelerator=cfg.accelerator,
            devices=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=out,
        )
        start = time.perf_counter()
        tested = trainer.test(module, datamodule=data, verbose=False) if data.test else [{}]
    if data.test is None:
        print(f"  the run's data set ({type(data).__name__}) has no test set: no test metrics")
    metrics = results.collect_metrics(tested[0])
    metrics["step"] = ckpt["gradlab"].get("updates", ckpt.get("global_step", 0))
    metrics["wall_time_s"] = time.perf_counter() - start
    metrics["status"] = "ok"
    results.write_metrics(out, metrics)
    for k, v in sorted(metrics.items()):
        if isinstance(v, float | int):
            print(f"  {k:<12} {v:.6g}")
    print(f"  metrics written to {out / 'metrics.json'}")
    return metrics
