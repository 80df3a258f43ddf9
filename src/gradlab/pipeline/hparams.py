"""The run's hyperparameters as a flat dict for TensorBoard's HPARAMS tab (and other loggers)."""

from omegaconf import DictConfig, OmegaConf

GROUPS = ("model", "data", "optim", "loss", "grads", "module")


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
            if k == "_partial_":
                continue
            if isinstance(v, list | dict):
                v = str(v)
            out[f"{group}/{k}"] = v
    leading = {}
    for key in first:
        name = key if key in out else key.replace(".", "/", 1)
        if name in out:
            leading[name] = out.pop(name)
    return {**leading, **out}
