"""Every command's ``main()``: ``python train.py``, ``python eval.py`` and
``python -m gradlab {train,eval,gradcheck,summarize,eos}``. Each ends a failure in one
``error:`` line and its exit code (``gradlab.errors``)."""

import gc
import sys
from pathlib import Path

from gradlab.errors import ConfigError, hydra_errors_raise, reported_errors


def _hydra_entry(task, config_name: str):
    """``task`` as a Hydra app over gradlab's config directory."""
    import hydra

    from gradlab.pipeline.compose import CONFIG_DIR, check_overrides_parse, setup_hydra

    def reported(cfg):  # inside Hydra's job: the one line, not Hydra's "Error executing job"
        from gradlab.pipeline.gc_passes import settle_libraries

        with reported_errors():
            settle_libraries()
            return task(cfg)

    check_overrides_parse(sys.argv[1:])
    setup_hydra()
    hydra_errors_raise()
    app = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)
    return app(reported)


def train() -> None:
    """``python train.py [overrides]``: one run, or a sweep with ``-m``, through Hydra."""

    def run_task(cfg):  # torch and Lightning load only when a run starts (not for --help)
        from gradlab.task import run_task

        return run_task(cfg)

    from gradlab.pipeline.signals import signals_noted

    with reported_errors(), signals_noted():  # Ctrl-C, SIGTERM: stop between updates
        _hydra_entry(run_task, "config")()
    from gradlab.sweep.summarize import failed_jobs_of_last_sweep

    failed = failed_jobs_of_last_sweep()
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        raise SystemExit(1)


def evaluate() -> None:
    """``python eval.py ckpt_path=PATH``: test a checkpoint in a directory of its own."""
    from omegaconf import OmegaConf

    from gradlab.pipeline.evaluate import evaluate as evaluate_checkpoint

    def task(cfg):
        if OmegaConf.is_missing(cfg, "ckpt_path"):
            raise ConfigError(
                "ckpt_path: required; python eval.py ckpt_path=RUN_DIR/checkpoints/last.ckpt"
            )
        evaluate_checkpoint(cfg)

    with reported_errors():
        _hydra_entry(task, "eval")()


def gradcheck() -> None:
    """``python -m gradlab gradcheck [overrides]``: the manual-vs-autograd table, no training
    (float64 by default); exit 4 when a difference passes ``grads.tol``."""
    import torch

    from gradlab.errors import EXIT_CODES
    from gradlab.models.losses import get_loss
    from gradlab.module.grad_compare import compare_gradients, format_table
    from gradlab.pipeline.process_state import torch_settings
    from gradlab.pipeline.run import draw

    def task(cfg):
        from gradlab.pipeline.ranges import check_ranges

        check_ranges(cfg)  # grads.tol, data and model options: before any work
        with torch_settings(cfg):
            data, model = draw(cfg)
            rows, _ = compare_gradients(model, get_loss(cfg.loss.name), *data.train)
            dtype = str(torch.get_default_dtype()).removeprefix("torch.")
        print(f"gradient check: {type(model).__name__} on {type(data).__name__} ({dtype})")
        print(format_table(rows, cfg.grads.tol))
        worst = max(r.max_rel for r in rows)
        if worst > cfg.grads.tol:
            print(
                f"error: grads.tol: max relative difference {worst:.3e} > {cfg.grads.tol}",
                file=sys.stderr,
            )
            raise SystemExit(EXIT_CODES["gradcheck"])

    with reported_errors():
        _hydra_entry(task, "gradcheck")()


def _one_directory(usage: str) -> Path:
    if len(sys.argv) != 2:
        raise ConfigError(f"usage: {usage}")
    path = Path(sys.argv[1])
    if not path.is_dir():
        raise ConfigError(f"{path}: not a directory (give a multirun directory)")
    return path


def summarize() -> None:
    """``python -m gradlab summarize MULTIRUN_DIR``: rebuild a sweep's summaries."""
    from gradlab.sweep.summarize import summarize as summarize_sweep

    with reported_errors():
        sweep = _one_directory("python -m gradlab summarize MULTIRUN_DIR")
        if (sweep / "metrics.json").exists() or (sweep / ".hydra").exists():
            raise ConfigError(
                f"{sweep}: a single run's directory, not a sweep; give the multirun directory "
                "that holds the jobs (nothing was written)"
            )
        table = summarize_sweep(sweep)
    print((sweep / "summary.md").read_text() if table else "no jobs found")


def edge_of_stability() -> None:
    """``python -m gradlab eos MULTIRUN_DIR``: sharpness against 2/lr for each job."""
    from gradlab.analysis.edge_of_stability import report

    with reported_errors():
        report(_one_directory("python -m gradlab eos MULTIRUN_DIR"))


COMMANDS = {
    "train": train,
    "eval": evaluate,
    "gradcheck": gradcheck,
    "summarize": summarize,
    "eos": edge_of_stability,
}


def as_script(command) -> None:
    """``command`` as the whole process (``train.py``, ``python -m gradlab``): the garbage
    collector held off until a run's libraries are loaded and settled
    (``pipeline.gc_passes``); once a signal stopped it, later ones are ignored while Python
    exits (they would only cut its clean-up short: exit -15 instead of 130)."""
    if command in (train, evaluate, gradcheck):  # (each job settles them: settle_libraries)
        gc.disable()
    from gradlab.pipeline.signals import ignore_after_stop

    try:
        command()
    finally:
        ignore_after_stop()


def main() -> None:
    """``python -m gradlab [COMMAND] [arguments]``; without a command: train (so that
    Lightning's DDP workers, started as ``python -m gradlab OVERRIDES``, train too)."""
    named = len(sys.argv) > 1 and sys.argv[1] in COMMANDS
    command = COMMANDS[sys.argv.pop(1)] if named else train  # Hydra reads what follows
    as_script(command)
