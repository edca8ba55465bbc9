"""The package's import graph: layers that only import downward, no cycle, and few imports of
xlatent's own modules inside functions (each one delays torch, dask or an optional extra)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "xlatent"

# lowest first; a module may import modules of its own layer or lower ones (the package
# ``xlatent.methods`` imports every method to register it, so it sits above them)
LAYERS = [
    {"xlatent.exceptions", "xlatent._version", "xlatent.options", "xlatent._synthetic"}, {"xlatent.modelfile"},
    {"xlatent.config", "xlatent.device", "xlatent._dask", "xlatent.patches", "xlatent.resample"},
    {"xlatent.model", "xlatent.model.networks", "xlatent.model.advection", "xlatent.model.integrate",
     "xlatent.model.autoencoder", "xlatent.model.latent_advection", "xlatent.model.losses", "xlatent.model.forecast"},
    {"xlatent.checks"},
    {"xlatent.train", "xlatent.geo", "xlatent.cf", "xlatent.path_energy", "xlatent.pair", "xlatent.datasets",
     "xlatent.datasets_wave"},
    {"xlatent.methods.base", "xlatent.methods.motion", "xlatent.methods.svf", "xlatent.methods.flow",
     "xlatent.methods.linear", "xlatent.methods.ot", "xlatent.methods.dynamic_ot", "xlatent.methods.ot_autoencoder"},
    {"xlatent.engine"},
    {"xlatent.methods.latent", "xlatent.methods.advection"},
    {"xlatent.methods"},
    {"xlatent.chunked"},
    {"xlatent.backends"},
    {"xlatent.api"},
    {"xlatent.accessor", "xlatent.io", "xlatent.forecast"},
    {"xlatent", "xlatent.plot"},
    {"xlatent.cli", "xlatent.__main__"},
]

MAX_INSIDE = 10  # own-module import statements inside functions (each for torch, dask or an extra)


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in ROOT.rglob("*.py")}


def _targets(node: ast.AST) -> list[str]:
    """xlatent modules an import statement loads (a submodule when a name is one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "xlatent"]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "xlatent":
        subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
        return subs if len(subs) == len(node.names) else [*subs, node.module]
    return []


def _imports(path: Path) -> list[tuple[list[str], bool]]:
    """``(targets, inside_a_function)`` for every own-module import statement of the file."""
    found = []

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            targets = _targets(child)
            if targets:
                found.append((targets, inside))
            visit(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


STATEMENTS = {name: _imports(path) for name, path in MODULES.items()}
GRAPH = {name: [(t, inside) for targets, inside in found for t in targets] for name, found in STATEMENTS.items()}
LAYER = {name: k for k, layer in enumerate(LAYERS) for name in layer}


def test_every_module_has_a_layer():
    assert set(MODULES) - set(LAYER) == set(), "add the new module to LAYERS"
    assert set(LAYER) - set(MODULES) == set(), "remove the module that is gone from LAYERS"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down(module):
    upward = {t for t, _ in GRAPH[module] if LAYER[t] > LAYER[module]}
    assert not upward, f"{module} (layer {LAYER[module]}) imports higher layers: {sorted(upward)}"


def test_no_cycle():
    edges = {m: {t for t, _ in GRAPH[m] if t != m} for m in MODULES}
    state: dict[str, int] = {}

    def walk(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycle = path[path.index(t):] if t in path else path
                pytest.fail("import cycle: " + " -> ".join([*cycle, t]))
            if t not in state:
                walk(t, [*path, t])
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            walk(m, [m])


def test_few_imports_inside_functions():
    """Counted over the whole package, in statements (one ``from x import a, b`` is one)."""
    inside = [(m, targets) for m, found in STATEMENTS.items() for targets, nested in found if nested]
    assert len(inside) <= MAX_INSIDE, inside
