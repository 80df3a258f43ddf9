"""The package's structure: its layers point down only (imports inside functions included),
no import cycle between gradlab's modules, and no module over 300 lines."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the gradlab modules it imports, anywhere in its file."""
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # ``from pkg import sub`` imports the submodule ``pkg.sub``; other names: ``pkg``
                subs = [f"{base}.{a.name}" for a in node.names]
                targets = [s if s in files else base for s in subs]
            for target in targets:
                while target and target not in files:  # a name inside a module: its module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    graph = import_graph()
    assert "gradlab.pipeline.run" in graph and graph["gradlab.pipeline.run"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


# gradlab's packages and top-level modules, lowest first: each imports only from layers below
# it (the README's Layout section draws the same order)
LAYERS = [
    {"errors"},
    {"safe_files", "sweep_plan", "models", "data", "optim"},
    {"instantiate"},
    {"module"},
    {"analysis"},
    {"callbacks"},
    {"pipeline"},
    {"sweep"},
    {"task", "api"},
    {"cli", "gradlab", "hydra_plugins"},
    {"__main__"},
]


def layer_of(module: str) -> int:
    parts = module.split(".")
    name = "hydra_plugins" if parts[0] == "hydra_plugins" else (parts + ["gradlab"])[1]
    (layer,) = [i for i, names in enumerate(LAYERS) if name in names]
    return layer


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module in the same or a higher layer (between packages)."""
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if a.split(".")[:2] != b.split(".")[:2] and layer_of(b) >= layer_of(a)
    )


def test_the_layer_check_finds_an_upward_import():
    graph = {"gradlab.module.m": {"gradlab.pipeline.run"}, "gradlab.pipeline.run": set()}
    assert upward_imports(graph) == ["gradlab.module.m -> gradlab.pipeline.run"]
    assert upward_imports({"gradlab.pipeline.run": {"gradlab.module.m"}}) == []


def test_layers_point_down_only():
    graph = import_graph()
    assert all(layer_of(m) is not None for m in graph)  # every module has its layer
    assert upward_imports(graph) == []


def test_no_module_is_long():
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long
