import torch

from xlatent.model.advection import advect, departure, sample


def _pattern(h=20, w=24):
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, h, w, generator=g)


def test_integer_shift_moves_pattern_exactly():
    z = _pattern()
    field = torch.zeros(1, 2, 20, 24)
    field[:, 0] = 3.0  # three cells toward increasing column
    field[:, 1] = -2.0  # two cells toward decreasing row
    out = advect(z, field, dt=1.0)
    # interior: out[r, c] = z[r + 2, c - 3]
    assert torch.allclose(out[..., 0:18, 3:], z[..., 2:20, 0:21], atol=1e-5)


def test_zero_field_is_identity():
    z = _pattern()
    assert torch.allclose(advect(z, torch.zeros(1, 2, 20, 24), 0.5), z, atol=1e-6)


def test_inflow_takes_border_values():
    z = _pattern()
    field = torch.zeros(1, 2, 20, 24)
    field[:, 0] = 5.0
    out = advect(z, field, 1.0)
    # the first columns come from outside the array: the left border column
    assert torch.allclose(out[..., :5], z[..., :1].expand(-1, -1, -1, 5), atol=1e-5)


def test_backtracked_steps_equal_sequential_steps_for_integer_shifts():
    z = _pattern()
    f1 = torch.zeros(1, 2, 20, 24)
    f1[:, 0] = 2.0
    f2 = torch.zeros(1, 2, 20, 24)
    f2[:, 1] = 4.0
    seq = advect(advect(z, f1, 0.5), f2, 0.5)
    once = sample(z, departure([f1, f2], [0.5, 0.5]))
    assert torch.allclose(seq, once, atol=1e-5)
