"""xlatent's own torch-side modules, imported on first use: ``import xlatent`` does not load torch.

Every module that needs the torch side writes ``torch_side("model.integrate").exp_field`` where it
uses it, instead of its own import helper; ``tests/test_layout.py`` reads these calls as imports
(they obey the layers like any other)."""

from __future__ import annotations

import importlib
from types import ModuleType


def torch_side(name: str) -> ModuleType:
    """The module ``xlatent.<name>`` (``"model.integrate"``, ``"train"``...), imported on first use.

    Parameters
    ----------
    name : str
        The module's dotted name under ``xlatent``; a string literal, so that the import check
        can read it.

    Returns
    -------
    module
    """
    return importlib.import_module(f"xlatent.{name}")
