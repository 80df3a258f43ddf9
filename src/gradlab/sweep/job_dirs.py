"""A batched group's job directories and configs, made as Hydra's ``run_job`` makes them but
without running it once per job (it deep-copies the whole config several times and dumps
three YAML files per job: about 0.1 s a job, most of a 1000-job sweep).

The group's jobs differ only in batchable values, so one composed config (the template)
serves them all: its ``.hydra/`` files are dumped once with a placeholder at each value that
differs, and each job's files fill them in with that job's values (each value dumped by
``OmegaConf.to_yaml`` as the whole file would dump it: the same bytes). A job's own config
for training is the template's with its values set and every ``${hydra:...}`` replaced by the
value Hydra's resolver gives that job (its ``runtime.output_dir``, ``job.num``, ...)."""

import contextlib
import copy
import functools
import gc
import os
import pickle
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from gradlab.safe_files import write_text

# the fields of Hydra's node that differ between the jobs of one sweep (run_job sets them)
JOB_FIELDS = ("job.num", "job.id", "job.override_dirname", "overrides.task", "runtime.output_dir")
HYDRA_RESOLVER = re.compile(r"\$\{hydra:\s*([\w.]+)\s*\}")
HOLE = "GRADLABHOLE{}END"


class Holes:
    """A YAML file dumped once with placeholders at ``paths``; ``fill`` gives it with values."""

    def __init__(self, container: dict, paths: list[tuple[str, ...]]):
        container = copy.deepcopy(container)
        for i, path in enumerate(paths):
            node = container
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = HOLE.format(i)
        self.keys = [path[-1] for path in paths]
        self.parts: list[str | tuple[int, str]] = []  # text, or (value index, indentation)
        for line in OmegaConf.to_yaml(container).splitlines(keepends=True):
            hole = re.search(r"GRADLABHOLE(\d+)END", line)
            if hole:
                self.parts.append((int(hole.group(1)), line[: len(line) - len(line.lstrip())]))
            elif self.parts and isinstance(self.parts[-1], str):
                self.parts[-1] += line
            else:
                self.parts.append(line)
        self.cache: dict = {}

    def fill(self, values: list) -> str:
        return "".join(p if isinstance(p, str) else self.entry(p, values[p[0]]) for p in self.parts)

    def entry(self, hole: tuple[int, str], value) -> str:
        """``key: value`` as OmegaConf dumps it, indented as the placeholder was."""
        i, indent = hole
        if type(value) is int and self.keys[i].isidentifier():  # what YAML prints for both
            return f"{indent}{self.keys[i]}: {value}\n"
        key = (i, repr(value))
        if key not in self.cache:
            text = OmegaConf.to_yaml({self.keys[i]: value})
            self.cache[key] = "".join(indent + line for line in text.splitlines(keepends=True))
        return self.cache[key]


class JobDirs:
    """Each job of a group: its directory, its ``.hydra/`` files, its config."""

    def __init__(self, template: DictConfig, keys: list[str]):
        self.template, self.keys = template, list(keys)
        self.hydra = OmegaConf.to_container(template.hydra, enum_to_str=True)
        task_keys = [k for k in template if k != "hydra"]
        self.task = OmegaConf.to_container(OmegaConf.masked_copy(template, task_keys))
        self.config_yaml = Holes(self.task, [tuple(k.split(".")) for k in self.keys])
        self.hydra_yaml = Holes(
            {"hydra": self.hydra}, [("hydra", *f.split(".")) for f in JOB_FIELDS]
        )
        # where the task config asks Hydra's resolver: (path, text); and what it asks
        self.asks = [(".".join(p), text) for p, text in strings_with_resolver(self.task)]
        asked = {m for _, text in self.asks for m in HYDRA_RESOLVER.findall(text)}
        self.frozen = pickle.dumps(OmegaConf.create(self.task))
        self.fixed = {f: OmegaConf.select(template.hydra, f) for f in asked - set(JOB_FIELDS)}
        self.sweep_dir = str(template.hydra.sweep.dir)
        self.override_lines: dict[str, str] = {}  # override -> its line in overrides.yaml
        self.dirname_conf = OmegaConf.to_container(
            template.hydra.job.config.override_dirname, resolve=True
        )

    def job(self, idx: int, overrides: list[str], values: dict) -> DictConfig:
        """Make job ``idx``'s directory (its ``.hydra/`` files); return its config (no Hydra
        node)."""
        job = self.hydra_fields(idx, overrides)
        out = Path(job["runtime.output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        if self.hydra.get("output_subdir") is None:  # hydra.output_subdir=null: no .hydra/
            return self.config(values, job)
        hydra_dir = out / self.hydra["output_subdir"]
        hydra_dir.mkdir(exist_ok=True)
        write_text(hydra_dir / "config.yaml", self.config_yaml.fill([values[k] for k in self.keys]))
        write_text(hydra_dir / "hydra.yaml", self.hydra_yaml.fill([job[f] for f in JOB_FIELDS]))
        write_text(hydra_dir / "overrides.yaml", self.overrides_yaml(overrides))
        return self.config(values, job)

    def overrides_yaml(self, overrides: list[str]) -> str:
        """``OmegaConf.to_yaml(overrides)``, item by item (a block list's items are written
        each on its own, and a sweep's jobs share most of them: ~0.7 ms a job saved)."""
        for o in overrides:
            if o not in self.override_lines:
                self.override_lines[o] = OmegaConf.to_yaml([o])
        return "".join(self.override_lines[o] for o in overrides) if overrides else "[]\n"

    def hydra_fields(self, idx: int, overrides: list[str]) -> dict:
        """The job-specific fields of Hydra's node, as run_job and the launcher set them."""
        dirname = override_dirname(self.dirname_conf, overrides)
        if self.hydra["sweep"]["subdir"] == "${hydra.job.num}":  # the default: no resolving
            subdir = str(idx)
        else:  # whatever it asks, from the template holding this job's fields
            template = self.template
            with read_write(template), open_dict(template):
                template.hydra.overrides.task = list(overrides)
                template.hydra.job.override_dirname = dirname
                template.hydra.job.id = idx
                template.hydra.job.num = idx
                subdir = str(OmegaConf.select(template, "hydra.sweep.subdir"))
        return {
            "job.num": idx,
            "job.id": str(idx),
            "job.override_dirname": dirname,
            "overrides.task": list(overrides),
            "runtime.output_dir": os.path.abspath(os.path.join(self.sweep_dir, subdir)),
        }

    def config(self, values: dict, job: dict) -> DictConfig:
        """The job's config: the template's with its values, Hydra's resolver answered (a
        copy of the template's config by unpickling it: a tenth of building one)."""
        cfg = pickle.loads(self.frozen)
        answers = {**self.fixed, **job}

        def answer(match) -> str:  # a literal: an escaped "${" stays text
            return str(answers[match.group(1)]).replace("${", "\\${")

        for key, text in self.asks:
            OmegaConf.update(cfg, key, HYDRA_RESOLVER.sub(answer, text), merge=False)
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, merge=False)
        return cfg


def strings_with_resolver(node, path: tuple = ()):
    """(path, text) of every string in ``node`` that asks ``${hydra:...}``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings_with_resolver(value, (*path, key))
    elif isinstance(node, str) and HYDRA_RESOLVER.search(node):
        yield path, node


@functools.cache
def parsed(text: str):
    """One override as Hydra parses it (a sweep's jobs repeat the same few: each is parsed
    once, not once per job; read only)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(text)


def override_dirname(conf: dict, overrides) -> str:
    """``hydra.job.override_dirname`` as Hydra derives it from a job's overrides (``conf``:
    ``hydra.job.config.override_dirname``)."""
    exclude = set(conf["exclude_keys"])
    lines = sorted(o.input_line for o in map(parsed, overrides) if o.key_or_group not in exclude)
    return conf["item_sep"].join(lines).replace("=", conf["kv_sep"])


@contextlib.contextmanager
def no_gc_passes():
    """Python's cycle collector off while a group's job files are made or written: each of
    its passes scans every live object, and a group's thousands of job configs made its
    passes most of that time (a 1000-job sweep: 6.0 s -> 3.5 s making the jobs here). What
    it would have collected is collected when it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
