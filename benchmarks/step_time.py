"""Seconds per training step of the latent model for a few widths, batch and patch sizes.

    python benchmarks/step_time.py
"""

import time

import torch

from xlatent.config import LatentConfig
from xlatent.model.latent_advection import LatentAdvection
from xlatent.model.losses import total_loss


def step_time(width: int, batch: int, patch: int, channels_last: bool, repeats: int = 10) -> float:
    cfg = LatentConfig(unet_width=width, encoder_width=width, flow_prior=None)
    model = LatentAdvection(1, cfg)
    x, y, m = torch.randn(batch, 1, patch, patch), torch.randn(batch, 1, patch, patch), torch.ones(batch, 1, patch, patch)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x, y, m = (t.contiguous(memory_format=torch.channels_last) for t in (x, y, m))
    opt = torch.optim.Adam(model.parameters())
    for i in range(repeats + 3):
        if i == 3:
            start = time.perf_counter()
        loss, _ = total_loss(model, x, y, m, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / repeats


if __name__ == "__main__":
    print(f"torch threads: {torch.get_num_threads()}")
    print("| width | batch | patch | channels_last | s/step |\n|---|---|---|---|---|")
    for width, batch, patch, cl in [(16, 8, 64, False), (8, 8, 64, False), (8, 8, 64, True), (8, 4, 64, True), (8, 16, 32, True)]:
        print(f"| {width} | {batch} | {patch} | {cl} | {step_time(width, batch, patch, cl):.3f} |")
