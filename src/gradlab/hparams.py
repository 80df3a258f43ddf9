"""The run's hyperparameters as a flat dict for TensorBoard's HPARAMS tab."""

from omegaconf import DictConfig, OmegaConf

GROUPS = ("model", "data", "optim", "loss", "grads", "module")


def flat_hparams(cfg: DictConfig) -> dict:
    out = {"seed": cfg.seed, "restarts": cfg.get("restarts", 1), "max_steps": cfg.trainer.max_steps}
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
    return out
