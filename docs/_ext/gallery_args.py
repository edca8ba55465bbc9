"""How each example in ``examples/`` runs in the docs gallery and in the tests: fast settings.

Every example takes ``--out FOLDER`` for the files it writes. A new example needs one line in
``FAST_ARGS`` (the tests and the docs build fail with a message until it has one).
"""

from __future__ import annotations

from pathlib import Path

FAST_ARGS: dict[str, list[str]] = {
    "quickstart.py": ["--max-iters", "3"],
    "plot_maps.py": ["--method", "flow", "--size", "64"],
}


def fast_args(example: str | Path) -> list[str]:
    """The fast command-line arguments of ``example`` (its file name or path)."""
    name = Path(example).name
    if name not in FAST_ARGS:
        raise KeyError(f"examples/{name} has no entry in docs/_ext/gallery_args.py FAST_ARGS: add one.")
    return list(FAST_ARGS[name])


def reset_argv(gallery_conf: dict, script_vars: dict) -> list[str]:
    """sphinx-gallery hook: the example's fast arguments, outputs beside the generated page."""
    target = Path(script_vars["target_file"])
    out = target.parent / "_outputs" / target.stem
    return fast_args(script_vars["src_file"]) + ["--out", str(out)]
