"""A run's composed config as plain data (for its checkpoints), one config or many."""

import copy
import re

from omegaconf import DictConfig, OmegaConf

REFERENCE = re.compile(r"\$\{(\w[\w.]*)\}")  # a whole value that is another key's: ${optim}


def config_as_data(cfg: DictConfig) -> dict:
    """The composed config without Hydra's node, as plain containers (for checkpoints)."""
    return {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        for k, v in cfg.items()
        if k != "hydra"
    }


class ConfigsAsData:
    """``config_as_data`` of many configs made from one ``template`` (plain, unresolved) that
    differ only in its interpolations' answers and the values at ``keys`` (a batched group's
    jobs): the first is resolved whole (~5 ms), each later one copies it and sets only what
    may differ: the values at ``keys`` and the interpolations that depend on them or ask
    Hydra, read from its config; a value that is another key's whole (``${optim}``) is
    copied from that key's."""

    def __init__(self, template: dict, keys: list[str]):
        paths = list(interpolated(template))
        refs = {p: tuple(m.group(1).split(".")) for p in paths
                if (m := REFERENCE.fullmatch(str(value_at(template, p))))}  # fmt: skip
        varying = {*(tuple(k.split(".")) for k in keys), *(p for p in paths if p not in refs)}
        self.reads = sorted(varying)  # read from each config
        self.copies = []  # (path, the path it copies), each after what it copies
        pending = dict(refs)
        while pending:
            ready = [p for p, t in pending.items() if not any(overlap(t, q) for q in pending)]
            for p in ready or list(pending):
                if any(overlap(pending[p], v) for v in varying):
                    varying.add(p)
                    self.copies.append((p, pending[p]))
                del pending[p]
        self.first: dict | None = None

    def __call__(self, cfg: DictConfig) -> dict:
        if self.first is None:
            self.first = config_as_data(cfg)
            return copy.deepcopy(self.first)
        data = copy.deepcopy(self.first)
        for path in self.reads:
            value = value_at(cfg, path)
            if OmegaConf.is_config(value):
                value = OmegaConf.to_container(value, resolve=True)
            set_at(data, path, value)
        for path, target in self.copies:
            set_at(data, path, copy.deepcopy(value_at(data, target)))
        return data


def interpolated(node, path: tuple = ()):
    """The paths in a plain config whose value holds an interpolation (``${...}``); a list
    holding one counts as a whole."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from interpolated(value, (*path, key))
    elif "${" in repr(node) and path and path[0] != "hydra":
        yield path


def overlap(a: tuple, b: tuple) -> bool:
    """Whether one path is the other or holds it."""
    return a[: len(b)] == b or b[: len(a)] == a


def value_at(node, path: tuple):
    for key in path:
        node = node[key]
    return node


def set_at(node, path: tuple, value) -> None:
    value_at(node, path[:-1])[path[-1]] = value
