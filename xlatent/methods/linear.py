"""``linear``: cross-dissolve ``(1 - t) * first + t * last``. No motion, so no flow.

Assumes nothing moves; anything that does appears twice, fading (ghosting).
"""

from __future__ import annotations

import numpy as np

from xlatent.methods.base import MethodResult, register


@register("linear", lazy=True)
def linear(first: np.ndarray, last: np.ndarray, mask: np.ndarray, fractions: np.ndarray, **_) -> MethodResult:
    """Frames ``(1 - t) * first + t * last`` at ``fractions``; no fields."""
    t = np.asarray(fractions, dtype=np.float32)[:, None, None, None]
    return MethodResult(frames=(1 - t) * first[None] + t * last[None], fields=None)
