"""Model files: tensors plus a JSON description, read back with no arbitrary unpickling.

One format for every fitted object (:class:`xlatent.LatentInterpolator`,
:class:`xlatent.Forecaster`): ``torch.save`` of ``{"meta": <JSON text>, "state_dict": tensors}``,
read with ``torch.load(weights_only=True)``. ``meta`` names the kind of file (``format``) and its
``format_version``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xlatent.exceptions import ModelFileError


def write(path: str | Path, meta: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write ``meta`` (JSON-serialisable, with ``format`` and ``format_version``) and the tensors."""
    import torch

    path = Path(path)
    tensors = {k: v.detach().cpu() for k, v in state.items()}
    torch.save({"meta": json.dumps(meta), "state_dict": tensors}, path)
    return path


def read(path: str | Path, fmt: str, version: int, what: str, saved_with: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(meta, state_dict)`` of a file of format ``fmt`` at most at ``version``.

    Raises
    ------
    ModelFileError
        When ``path`` does not exist, is not such a file, or was written by a newer xlatent;
        ``what`` (``"model"``) names the kind of file and ``saved_with``
        (``"LatentInterpolator.save"``) what writes one.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"No {what} file at {path}.")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
    except Exception as err:  # torch's own text suggests weights_only=False: not for us
        raise ModelFileError(f"{path} is not an xlatent {what} file (saved with {saved_with}).") from err
    if meta.get("format") != fmt or meta.get("format_version", 0) > version:
        raise ModelFileError(f"{path} is not an xlatent {what} file of a version this xlatent reads.")
    return meta, blob["state_dict"]
