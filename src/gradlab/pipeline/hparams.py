"""The run's hyperparameters as a flat dict for TensorBoard's HPARAMS tab (and other loggers)."""

from omegaconf import DictConfig, OmegaConf

GROUPS = ("model", "data", "optim", "loss", "grads", "module")
MODULE_GROUPS = ("model", "optim", "scheduler", "loss", "grads", "restarts")


def flat_hparams(cfg: DictConfig, first: list[str] = ()) -> dict:
    """``group/key`` for every value of the main groups; the keys a sweep varies come first
    (``first``, as ``optim.lr``), so the table opens with what the sweep asks about."""
    out = {"seed": cfg.seed, "restarts": cfg.get("restarts", 1), "max_steps": cfg.trainer.max_steps}
    if cfg.get("tags"):  # the run's tags, searchable in TensorBoard's HPARAMS tab and MLflow
        out["tags"] = ",".join(str(t) for t in cfg.tags)
    for group in GROUPS:
        node = cfg.get(group)
        if node is None:
            continue
        for k, v in OmegaConf.to_container(node, resolve=True).items():
            if k == "_partial_" or (group == "module" and k in MODULE_GROUPS):
                continue  # (the module's groups are flattened as groups of their own)
            if isinstance(v, list | dict):
                v = str(v)
            out[f"{group}/{k}"] = v
    leading = {}
    for key in first:
        name = key if key in out else key.replace(".", "/", 1)
        if name in out:
            leading[name] = out.pop(name)
    return {**leading, **out}


# what defines a run, shown in TensorBoard's HPARAMS tab beside the keys its sweep varies
DEFINING = ("seed", "model/sizes", "model/activation", "model/degree", "optim", "optim/lr",
            "loss/name", "grads/mode", "restarts", "tags")  # fmt: skip


def session_hparams(hparams: dict, swept: list[str]) -> dict:
    """The HPARAMS tab's columns for a run: the keys its sweep varies, then the short set in
    ``DEFINING`` (the optimizer by its class name), not every constant field of its config."""
    named = dict(hparams)
    if "optim/_target_" in named:
        named["optim"] = str(named["optim/_target_"]).rsplit(".", 1)[-1]
    keys = [k if k in named else k.replace(".", "/", 1) for k in swept]
    keys += [k for k in DEFINING if k not in keys]
    return {k: named[k] for k in keys if k in named and named[k] is not None}
