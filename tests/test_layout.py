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
    {"xlatent.exceptions", "xlatent._version", "xlatent.normalise", "xlatent._lazy", "xlatent.checks", "xlatent.input_checks"},
    {"xlatent.datasets.grid", "xlatent.datasets.textures", "xlatent.datasets.kinematics"},
    {"xlatent.datasets.cases", "xlatent.datasets.wave", "xlatent.datasets.change", "xlatent.datasets"},
    {"xlatent.modelfile", "xlatent.device", "xlatent._dask", "xlatent.patches", "xlatent.resample", "xlatent.atomic"},
    {"xlatent.model.networks", "xlatent.model.advection", "xlatent.model.integrate"},  # torch operators
    {"xlatent.motion.base", "xlatent.motion.svf", "xlatent.motion.estimators", "xlatent.motion.guard", "xlatent.motion"},
    {"xlatent.config"},
    {"xlatent.model", "xlatent.model.autoencoder", "xlatent.model.latent_advection", "xlatent.model.losses",
     "xlatent.model.forecast", "xlatent.model.synthesis", "xlatent.model.blends"},
    {"xlatent.geo.times", "xlatent.geo.crs"},  # geo, lowest first
    {"xlatent.geo.dims"},
    {"xlatent.geo.spacing", "xlatent.geo.values"},
    {"xlatent.geo.units", "xlatent.geo.checks"},
    {"xlatent.geo.outputs"},
    {"xlatent.train", "xlatent.geo", "xlatent.cf", "xlatent.path_energy", "xlatent.pair", "xlatent.stack"},
    {"xlatent.methods.base", "xlatent.methods.flow",
     "xlatent.methods.linear", "xlatent.methods.ot", "xlatent.methods.dynamic_ot", "xlatent.methods.ot_autoencoder"},
    {"xlatent.engine"},
    {"xlatent.methods.latent", "xlatent.methods.advection"},
    {"xlatent.methods"},
    {"xlatent.chunked.graph"},  # the dask path, lowest first
    {"xlatent.chunked.coarse"},
    {"xlatent.chunked.latent_model", "xlatent.chunked.flow_method"},
    {"xlatent.chunked"},
    {"xlatent.backends"},
    {"xlatent.arguments", "xlatent.results"},
    {"xlatent.interpolator"},
    {"xlatent.api"},
    {"xlatent.intervals"},
    {"xlatent.archive.windows"},  # the archive model, lowest first
    {"xlatent.archive.model"},
    {"xlatent.archive.fit", "xlatent.archive.pretrained"},
    {"xlatent.archive", "xlatent.series"},
    {"xlatent.totals"},
    {"xlatent.reading", "xlatent.drawing"},
    {"xlatent.forecast.config", "xlatent.forecast.inputs"},  # forecasting, lowest first
    {"xlatent.forecast.model"},
    {"xlatent.forecast.fit"},
    {"xlatent.forecast.methods"},
    {"xlatent.accessor", "xlatent.io", "xlatent.forecast"},
    {"xlatent", "xlatent.plot"},
    {"xlatent.cli.parser"},
    {"xlatent.cli.commands"},
    {"xlatent.cli", "xlatent.__main__"},
]

MAX_INSIDE = 6  # own-module import statements inside functions (each for dask or an extra; torch: torch_side)


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in ROOT.rglob("*.py")}


def _lazy_target(node: ast.AST) -> str | None:
    """The module a ``torch_side("model.integrate")`` call imports (:mod:`xlatent._lazy`), or None."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return f"xlatent.{node.args[0].value}" if name == "torch_side" else None


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


def _lazy_imports(path: Path) -> list[str]:
    """Modules the file imports through ``torch_side(...)`` calls."""
    return [t for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if (t := _lazy_target(node))]


STATEMENTS = {name: _imports(path) for name, path in MODULES.items()}
LAZY = {name: _lazy_imports(path) for name, path in MODULES.items()}
GRAPH = {name: [(t, inside) for targets, inside in found for t in targets] + [(t, True) for t in LAZY[name]]
         for name, found in STATEMENTS.items()}
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


def test_lazy_imports_name_modules():
    """Every ``torch_side(...)`` call names a module that exists (a typo would fail at run time only)."""
    missing = {m: t for m, targets in LAZY.items() for t in targets if t not in MODULES}
    assert not missing, missing


def test_few_imports_inside_functions():
    """Counted over the whole package, in statements (one ``from x import a, b`` is one)."""
    inside = [(m, targets) for m, found in STATEMENTS.items() for targets, nested in found if nested]
    assert len(inside) <= MAX_INSIDE, inside
