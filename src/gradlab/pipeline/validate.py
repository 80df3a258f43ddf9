"""Checking a composed config before any heavy work, so a mistake ends in one line naming the
key: values, unknown keys (with a did-you-mean), optimizer arguments, the strategy, the run
directory, and (once data and model are built) the model's sizes and the loss against the data.
"""

import inspect
import math
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gradlab.errors import ConfigError, did_you_mean
from gradlab.pipeline.ranges import check_ranges
from gradlab.pipeline.run_dirs import RESULT_FILES, check_not_nested, check_paths_inside
from gradlab.pipeline.schema import TOP_LEVEL_KEYS

GRADS_KEYS = {"mode", "every_n_steps", "tol"}
UNSUPPORTED_STRATEGIES = ("ddp_spawn", "ddp_fork", "ddp_notebook")


def validate(cfg: DictConfig, *, full: bool = True) -> None:
    """Fail on values that cannot work. ``full=False`` leaves out the checks that import
    Lightning (the trainer's, callbacks' and logger's keys), for a check before the imports."""
    check_values(cfg)
    check_keys(cfg, full=full)
    check_optimizer(cfg)
    check_paths_inside(cfg)


def check_run_values(cfg: DictConfig) -> None:
    """What the runs of a batched group may differ in: the seed and the optimizer's options
    (the rest is the group's, checked once)."""
    check_seed_and_rate(cfg)
    check_ranges(cfg, "optim.")


def check_seed_and_rate(cfg: DictConfig) -> None:
    if not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"seed: must be in [0, 2**32), got {cfg.seed}")
    lr = OmegaConf.select(cfg, "optim.lr")
    if lr is not None and (not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0):
        raise ConfigError(f"optim.lr: must be a finite positive number, got {lr!r}")


def check_values(cfg: DictConfig) -> None:
    """The top-level values: counts, seed, learning rate, modes, names that become paths."""
    check_name(cfg.get("task_name"), "task_name")
    for key in ("trainer.max_steps", "trainer.log_every_n_steps", "restarts", "threads"):
        _positive_int(cfg, key)
    check_seed_and_rate(cfg)
    if cfg.grads.mode not in ("autograd", "manual", "check"):
        raise ConfigError(f"grads.mode: unknown mode {cfg.grads.mode!r} (autograd, manual, check)")
    if cfg.dtype not in ("float32", "float64"):
        raise ConfigError(f"dtype: must be float32 or float64, got {cfg.dtype!r}")
    if cfg.on_divergence not in ("fail", "inf"):
        raise ConfigError(f"on_divergence: must be fail or inf, got {cfg.on_divergence!r}")
    strategy = str(OmegaConf.select(cfg, "trainer.strategy", default="auto"))
    if strategy.startswith(UNSUPPORTED_STRATEGIES):
        raise ConfigError(
            f"trainer.strategy: {strategy} is not supported (its processes' results do not come "
            "back to the main process); use trainer=ddp"
        )
    check_ranges(cfg)


NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=,+-]{0,99}")


def check_name(value, key: str) -> None:
    """A name joined under logs/ (a directory or file name): no separators, no '..'."""
    if value is None:
        return
    if not isinstance(value, str) or not NAME.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{key}: {value!r} is not a plain name (letters, digits, _ . = , + -, at most "
            "100, no '/' or '..'): it names a directory under logs/"
        )


def _positive_int(cfg: DictConfig, key: str) -> None:
    v = OmegaConf.select(cfg, key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ConfigError(f"{key}: must be a positive integer, got {v!r}")


# ------------------------------------------------------------------ unknown keys
def _unknown(prefix: str, keys, known) -> None:
    for key in keys:
        if key not in known and not str(key).startswith("_"):
            raise ConfigError(
                f"{prefix}{key}: no part of the run reads this key{did_you_mean(key, known)}"
            )


def _import(target: str):
    """The object a ``_target_`` names (as Hydra finds it, without Hydra's error log)."""
    import importlib

    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(target)


def _target_parameters(name: str, target: str) -> set[str] | None:
    """The keyword names ``target`` accepts, or None when it takes any (``**kwargs``)."""
    try:
        obj = _import(target)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"{name}._target_: cannot import {target}") from e
    params = inspect.signature(obj).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def _check_node(name: str, node, full: bool) -> None:
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return
    target = str(node["_target_"])
    if target.startswith(("lightning", "gradlab.callbacks", "gradlab.module")) and not full:
        return  # importing them costs seconds: checked again once the run imports Lightning
    known = _target_parameters(name, target)
    if known is not None:
        extra = {"generator", "restarts"} if name in ("data", "model") else set()
        if name == "module":  # the drawn model, its optimizer and the data's task: set by
            extra, known = (
                set(),
                known - {"net", "optimizer", "lr_scheduler", "task", "num_classes"},
            )  # the pipeline, not the config
        unread = [k for k in node if k not in known | extra and not str(k).startswith("_")]
        if unread and ("." in name or did_you_mean(unread[0], known)):  # a typo
            _unknown(f"{name}.", unread, known | extra)
        elif unread:  # e.g. data._target_=mypackage.MyData over the group's other keys
            takes = ", ".join(sorted(known - extra - {"generator"})) or "no keys"
            raise ConfigError(
                f"{name}.{unread[0]}: {target} does not take this key"
                f"; it takes: {takes}. Give it a config file of its own ({name}/NAME.yaml "
                f"with _target_: {target} and those keys, in a directory on GRADLAB_CONFIG_PATH; "
                f"then {name}=NAME)"
            )


def check_keys(cfg: DictConfig, full: bool = True) -> None:
    """Every key is read by some part of the run (a typo is an error, not ignored)."""
    _unknown("", cfg.keys(), TOP_LEVEL_KEYS)
    _unknown("grads.", cfg.grads.keys(), GRADS_KEYS)
    _unknown("loss.", cfg.loss.keys(), {"name"})
    for name in ("data", "model", "optim", "scheduler", "trainer", "module"):
        _check_node(name, cfg.get(name), full)
    for name, node in (cfg.get("logger") or {}).items():
        _check_node(f"logger.{name}", node, full)
    for name, node in (cfg.get("callbacks") or {}).items():
        _check_node(f"callbacks.{name}", node, full)


# --------------------------------------------------------------------- optimizer
def _key_in_message(message: str, keys) -> str | None:
    text = message.lower().replace("learning rate", "lr").replace("epsilon", "eps")
    text = text.replace("beta parameter", "betas")
    return next((k for k in keys if k.lower() in text), None)


def check_optimizer(cfg: DictConfig) -> None:
    """Build the optimizer on one scratch parameter: torch's own value checks run now, and
    their message is given the key it is about."""
    import torch
    from hydra.utils import instantiate

    keys = [k for k in cfg.optim if not str(k).startswith("_")]
    try:
        factory = instantiate(cfg.optim)
        factory([torch.zeros(1, requires_grad=True)])
    except Exception as e:  # noqa: BLE001 - any refusal is a config error about optim.*
        from gradlab.errors import error_line

        message = error_line(e).split(": ", 1)[-1]
        key = _key_in_message(message, keys)
        raise ConfigError(f"optim.{key or cfg.optim['_target_']}: {message}") from e


# ------------------------------------------------------------ model against data
def check_model_fits_data(cfg: DictConfig, data, model, loss) -> None:
    """One forward pass and the loss on two training samples: the sizes and the loss fit the
    data (before the Trainer or the logger starts)."""
    import torch

    x, y = data.train
    task = data.task
    if task == "objective" and cfg.loss.name != "value":
        raise ConfigError(
            f"loss={cfg.loss.name}: data={_option(cfg.data)} has no targets (the model's "
            "output is the objective); use loss=value"
        )
    if cfg.loss.name == "value" and task != "objective":
        raise ConfigError(
            f"loss=value: needs data=none (a pure objective), not {_option(cfg.data)}"
        )
    if cfg.loss.name in ("nll", "cross_entropy") and task != "classification":
        raise ConfigError(
            f"loss={cfg.loss.name}: needs class labels; data={_option(cfg.data)} is a "
            f"{task} data set (use loss=mse)"
        )
    if task == "classification" and cfg.loss.name not in ("nll", "cross_entropy"):
        raise ConfigError(
            f"loss={cfg.loss.name}: data={_option(cfg.data)} has class labels; use loss=nll"
        )
    if cfg.loss.name == "bce" and (y.min() < 0 or y.max() > 1):
        raise ConfigError(
            f"loss=bce: needs targets in [0, 1]; data={_option(cfg.data)} has targets in "
            f"[{float(y.min()):.3g}, {float(y.max()):.3g}] (use loss=mse)"
        )
    n = min(2, len(x))
    try:
        with torch.no_grad():
            pred = model(x[:n].to(torch.get_default_dtype()))
    except RuntimeError as e:
        raise ConfigError(
            f"model: does not take this data's inputs ({x.shape[-1]} features per sample): "
            f"{str(e).splitlines()[0]}; set the model's input size to {x.shape[-1]}"
        ) from e
    if task == "objective":
        return
    want = data.num_classes if task == "classification" else y.shape[-1]
    if pred.shape[-1] != want:
        raise ConfigError(
            f"model: gives {pred.shape[-1]} outputs per sample, the data need {want}; "
            f"set the model's output size to {want}"
        )
    loss(pred, y[:n])


def _option(node) -> str:
    target = str(node.get("_target_", "?")).rsplit(".", 1)[-1]
    return target.removesuffix("DataModule").lower()


# ------------------------------------------------------------------ run directory


def resumes_own_run(path: Path, ckpt_path) -> bool:
    """Whether ``ckpt_path`` is this run directory's own checkpoint (a requeued run)."""
    if not ckpt_path:
        return False
    return Path(ckpt_path).resolve().parent == (Path(path) / "checkpoints").resolve()


def check_fresh_dir(path: Path, key: str, ckpt_path=None, files=(*RESULT_FILES, ".hydra")) -> None:
    """Refuse a run directory that holds another run's results (nothing there changes);
    resuming a run in its own directory from its own checkpoint continues it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{key}: {path} is a file, not a directory")
    check_not_nested(path, key)
    if resumes_own_run(path, ckpt_path):
        return
    found = [f for f in files if (path / f).exists()]
    if found:
        raise ConfigError(
            f"{key}: {path} holds another run's results ({', '.join(found)}); "
            "choose a new directory (or leave it out for a fresh one)"
        )


def announce(cfg: DictConfig) -> None:
    """One line for an option that is legal but does more than it says: several devices on
    a machine without a GPU are several CPU processes."""
    import torch

    devices, accelerator = cfg.trainer.get("devices", 1), str(cfg.trainer.get("accelerator"))
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    precision = str(cfg.trainer.get("precision"))
    if on_cpu and precision in ("16", "16-mixed"):
        print(
            f"trainer.precision={precision}: a CPU has no float16 autocast; Lightning runs "
            "bf16-mixed (bfloat16 autocast) instead"
        )
    if on_cpu and isinstance(devices, int) and devices > 1:
        print(
            f"trainer.devices={devices}: {devices} CPU processes (DDP over gloo), each training on "
            "its share of the data; the results are rank 0's"
        )
