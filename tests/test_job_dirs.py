"""A batched group's ``.hydra/`` files are filled in from one dump with placeholders
(``sweep.job_dirs.Holes``): each must be the bytes ``OmegaConf.to_yaml`` gives the whole
config, whatever the values (long ones wrap by their column, quoted ones, blank lines)."""

import copy
import random

from omegaconf import OmegaConf

from gradlab.sweep.job_dirs import Holes

TEMPLATE = {
    "hydra": {
        "job": {"override_dirname": "", "num": 0},
        "runtime": {"output_dir": ""},
        "overrides": {"task": []},
    },
    "seed": 1,
    "optim": {"lr": 0.1, "betas": [0.9, 0.99]},
}
PATHS = [("hydra", "job", "override_dirname"), ("hydra", "job", "num"),
         ("hydra", "runtime", "output_dir"), ("hydra", "overrides", "task"), ("seed",),
         ("optim", "lr"), ("optim", "betas")]  # fmt: skip


def whole(values: list) -> str:
    """The file as OmegaConf dumps the whole config with ``values`` at ``PATHS``."""
    config = copy.deepcopy(TEMPLATE)
    for path, value in zip(PATHS, values, strict=True):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return OmegaConf.to_yaml(config)


def test_filled_files_are_the_whole_dump():
    rng = random.Random(0)
    signs = "ab =:,'\"#-\n\t[]{}é1.0e~"

    def text() -> str:
        return "".join(rng.choice(signs) for _ in range(rng.randint(0, 120)))

    cases = [
        ["lr=0.1,seed=2", 3, "/tmp/sweep/3", ["optim.lr=0.1", "seed=2"], 2, 0.1, [0.9, 0.9]],
        ["", 4, "/tmp/a b/4", [], 3, 1e-5, [1, 2]],
        ["true", 5, "1e5", ["x: y", "017"], 4, 1, []],
        ["q " * 50, 6, "/t/" + "p" * 120 + " q" * 30, ["a b " * 40, "x" * 200], 5, 3.0, [0.1]],
        ["a\n\n b", 7, " lead", ["#x", "a\n\nb", "é\t"], 6, None, [0.5]],
    ]
    cases += [[text(), rng.randint(0, 99), text(), [text() for _ in range(rng.randint(0, 3))],
               rng.randint(0, 5), rng.random(), [rng.random()]] for _ in range(200)]  # fmt: skip
    holes = Holes(TEMPLATE, PATHS)
    for values in cases:
        assert holes.fill(values) == whole(values), values
