"""A batched group's job directories and configs, made as Hydra's ``run_job`` makes them but
without running it once per job (it deep-copies the whole config several times and dumps
three YAML files per job: about 0.1 s a job, most of a 1000-job sweep).

The group's jobs differ only in batchable values, so one composed config (the template)
serves them all: its ``.hydra/`` files are dumped once with a placeholder at each value that
differs, and each job's files fill them in with that job's values (each value dumped by
``OmegaConf.to_yaml`` as the whole file would dump it: the same bytes). A job's own config
for training is the template's with its values set and every ``${hydra:...}`` replaced by the
value Hydra's resolver gives that job (its ``runtime.output_dir``, ``job.num``, ...)."""

import copy
import functools
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
        self.dump_new([(p, values[p[0]]) for p in self.parts if not isinstance(p, str)])
        return "".join(p if isinstance(p, str) else self.entry(p, values[p[0]]) for p in self.parts)

    def entry(self, hole: tuple[int, str], value) -> str:
        """``key: value`` as OmegaConf dumps it where the placeholder was."""
        i, indent = hole
        name = self.keys[i]
        if type(value) is int and name.isidentifier():  # what YAML prints for both
            return f"{indent}{name}: {value}\n"
        if name.isidentifier() and value and one_line_strings(value):  # a job's overrides
            return f"{indent}{name}:\n" + "".join(indent + list_item(v) for v in value)
        key = (i, repr(value))
        if key not in self.cache:
            self.cache[key] = nested_yaml({name: value}, indent)
        return self.cache[key]

    def dump_new(self, holes: list[tuple[tuple[int, str], object]]) -> None:
        """The new strings at one indentation dumped in one ``to_yaml`` (a job's directory
        and override string: one dump, not one each), cut where each key's lines begin."""
        by_indent: dict[str, dict[int, str]] = {}
        for (i, indent), v in holes:
            if type(v) is str and (i, repr(v)) not in self.cache:
                by_indent.setdefault(indent, {})[i] = v
        for indent, new in by_indent.items():
            names = [self.keys[i] for i in new]
            if len(new) < 2 or len(set(names)) < len(names):
                continue  # (one value, or keys alike: each dumped on its own)
            text = nested_yaml(dict(zip(names, new.values(), strict=True)), indent)
            entries = re.split(rf"\n(?={indent}\S)", text.rstrip("\n"))  # (a value's own
            for (i, v), entry in zip(new.items(), entries, strict=True):  # lines: deeper)
                self.cache[(i, repr(v))] = entry + "\n"


def one_line_strings(value) -> bool:
    """A list of strings whose items YAML writes on one line each at any depth (no space or
    line break to wrap at, nothing to escape)."""
    return type(value) is list and all(
        type(v) is str and v.isprintable() and " " not in v for v in value
    )


@functools.lru_cache(maxsize=1 << 16)
def list_item(text: str) -> str:
    """``text`` as an item of a list OmegaConf dumps (``- text``): a block list's items are
    dumped each on its own, and a sweep's jobs share most of their overrides."""
    return OmegaConf.to_yaml([text])


def nested_yaml(mapping: dict, indent: str) -> str:
    """``mapping`` as OmegaConf dumps it nested ``indent`` deep (a long value wraps by its
    column, a blank line in it stays blank)."""
    depth = len(indent) // 2
    for _ in range(depth):
        mapping = {"n": mapping}
    return "".join(OmegaConf.to_yaml(mapping).splitlines(keepends=True)[depth:])


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
        overrides_yaml = "".join(map(list_item, overrides)) if overrides else "[]\n"
        write_text(hydra_dir / "overrides.yaml", overrides_yaml)  # (OmegaConf.to_yaml's)
        return self.config(values, job)

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
