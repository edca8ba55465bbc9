"""How the latent model renders its frames (torch only; see ``docs/method.md``): frames come from
advecting ``E(first)`` with the fields of F and decoding. With ``exact_endpoints`` the first and
last frames equal the inputs:

- ``"transport"`` (default): ``(1 - t) * first_t + t * last_t``, ``first`` advected forward and
  ``last`` carried back along the learned motion (one bilinear sample each); the decoder
  renders nothing. Best on the benchmark (benchmarks/RESULTS.md, entry 21): in the two blends below
  the decoder's correction enters the intermediate frames with weight ``(1 - t)`` while the
  loss trains it only at ``t = 1``.
- ``"symmetric"``: ``(1 - t) * (D(z_t) + r0) + t * last_t``, ``last_t`` the last image carried
  back along the same motion to time ``t``.
- ``"residual"``: ``D(z_t) + (1 - t) * r0 + t * r1_t``, only the decoder's miss at the end
  (``r1 = last - D(z_1)``) carried back.

``r0 = first - D(z_0)`` is the decoder's miss at the start.
"""

from __future__ import annotations

import torch

__all__ = ["BLENDS"]


def _transport(model, first, last, f, fractions, t):
    """``first`` advected forward and ``last`` carried back, blended; no end corrections."""
    first_t = torch.cat(model.roll(first, f, fractions), dim=0)
    last_t = torch.cat(model.carry_back(last, f, fractions), dim=0)
    frames = (1 - t) * first_t + t * last_t
    zero = torch.zeros_like(frames)
    return frames, zero[0], zero


def _decoded(model, first, f, fractions, end: bool):
    """``D(z_t)`` at ``fractions``, ``r0`` and (``end``) ``D(z_1)``: one decoder pass over the
    frames, the start and the end."""
    z = model.encode(first)
    k = len(fractions)
    wanted = [*fractions, 1.0] if end else list(fractions)
    decoded = model.decode(torch.cat(model.roll(z, f, wanted) + [z]))
    return decoded[:k], first - decoded[-1:], decoded[k : k + 1] if end else None


def _symmetric(model, first, last, f, fractions, t):
    """``D(z_t)`` blended with the last image carried back along the motion."""
    frames, r0, _ = _decoded(model, first, f, fractions, end=False)
    last_t = torch.cat(model.carry_back(last, f, fractions), dim=0)
    frames = (1 - t) * frames + t * last_t
    return frames, r0[0], torch.zeros_like(frames)


def _residual(model, first, last, f, fractions, t):
    """``D(z_t)``; only the decoder's miss at the end is carried back."""
    frames, r0, end = _decoded(model, first, f, fractions, end=True)
    tail = t * torch.cat(model.carry_back(last - end, f, fractions), dim=0)
    return frames, r0[0], tail


# blend name -> tile renderer (the name is checked before any work, xlatent.api)
BLENDS = {"transport": _transport, "symmetric": _symmetric, "residual": _residual}
