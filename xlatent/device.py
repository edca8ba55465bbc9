"""The torch device: checked before any work (:func:`check_device`), resolved where a model is
built (:func:`resolve_device`). torch is imported only inside these functions."""

from __future__ import annotations

import warnings
from typing import Any

from xlatent.exceptions import DeviceError, IgnoredOptionWarning


def check_device(device: Any, method: str = "latent", uses_device: bool = True) -> None:
    """Check ``device=`` before any work: a torch device name, available here.

    A name torch does not know, a CUDA or MPS device this machine lacks, or a CUDA index beyond
    its GPUs is a :class:`~xlatent.exceptions.DeviceError`. For methods that run on the CPU
    (``uses_device=False``), a device other than ``"auto"`` or a CPU one is then ignored with an
    :class:`~xlatent.exceptions.IgnoredOptionWarning`.

    Parameters
    ----------
    device : str or torch.device or None
        ``"auto"`` (or None), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...
    method : str
        The method's name, for the warning.
    uses_device : bool
        Whether the method runs on the torch device it is given.

    Raises
    ------
    DeviceError
        When the device is unknown to torch or not available on this machine.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return  # "auto" always resolves (to the CPU at worst); no torch import for CPU methods
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise DeviceError(f"device={device!r} is not a torch device: use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device={device!r} but torch sees no CUDA GPU here. Use device='auto' or 'cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device={device!r} but torch sees {torch.cuda.device_count()} CUDA GPU(s) here (cuda:0...). "
                          "Use device='cuda' or 'auto'.")
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "mps" and (mps is None or not mps.is_available()):
        raise DeviceError(f"device={device!r} but torch sees no Apple MPS device here. Use device='auto' or 'cpu'.")
    if not uses_device and dev.type != "cpu":
        warnings.warn(
            f"method={method!r} runs on the CPU: device={device!r} is ignored (the methods that use a "
            "torch device: 'latent', 'advection', 'flow', 'dynamic-ot', 'ot-autoencoder'). Pass device='auto' or 'cpu' "
            "to silence this.",
            IgnoredOptionWarning,
            stacklevel=3,
        )


def resolve_device(device: Any = "auto"):
    """The torch device to build a model on.

    Parameters
    ----------
    device : str or torch.device or None
        ``"auto"`` (or None): CUDA when available, else Apple MPS, else CPU; anything else as given.

    Returns
    -------
    torch.device

    Raises
    ------
    DeviceError
        When CUDA is asked for and torch sees no CUDA GPU.
    """
    import torch

    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device={device!r} but torch sees no CUDA GPU here. Use device='auto' or 'cpu'.")
    return dev
