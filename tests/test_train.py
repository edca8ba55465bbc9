"""The one training loop (:func:`xlatent.train.fit_loop`) and its callbacks, on a model of two
weights: seeded, stopped by the callbacks, scored, checkpointed."""

import numpy as np
import pytest
import torch

from xlatent import train


def _problem():
    """A least-squares fit of ``y = 2 x + 1`` with batches drawn by the loop's generator."""
    model = torch.nn.Linear(1, 1)
    x = torch.linspace(-1, 1, 64)[:, None]
    y = 2 * x + 1

    def step(rng):
        pick = torch.from_numpy(rng.integers(len(x), size=8))
        loss = ((model(x[pick]) - y[pick]) ** 2).mean()
        return loss, {"loss": float(loss.detach()), "half": float(loss.detach()) / 2}

    return model, step


def test_same_seed_same_weights_and_history():
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model, step = _problem()
        history = train.fit_loop(model, step, lr=0.1, max_iters=30, seed=3, keys=("loss", "half"))
        runs.append((model.weight.detach().clone(), history))
    assert torch.equal(runs[0][0], runs[1][0])
    assert runs[0][1].loss == runs[1][1].loss and len(runs[0][1].loss) == 30
    assert runs[0][1].parts["half"] == [v / 2 for v in runs[0][1].loss]
    assert runs[0][1].stopped == "max_iters (30)" and runs[0][1].loss[-1] < runs[0][1].loss[0]


def test_callbacks_stop_score_and_checkpoint(tmp_path):
    model, step = _problem()
    scores = []

    def score(m):
        assert not m.training and not torch.is_grad_enabled()
        scores.append(float(m.bias))
        return abs(float(m.bias) - 1.0)

    # in order; the early stop last, so that the others see the step it stops at
    callbacks = [train.Progress("test", 500, enabled=False), train.Validation(score, every=2),
                 train.Checkpoint(tmp_path / "ckpt.pt", every=4), train.EarlyStop(patience=5, min_delta=0.5)]
    history = train.fit_loop(model, step, lr=0.05, max_iters=500, seed=0, callbacks=callbacks)
    assert history.stopped.startswith("plateau after ") and len(history.loss) < 500
    assert history.parts["validation_step"] == list(range(2, len(history.loss) + 1, 2))
    assert len(scores) == len(history.parts["validation"])
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert saved["step"] == len(history.loss)  # the last step, written at the end
    assert torch.equal(saved["model"]["weight"], model.weight.detach())
    assert not model.training


def test_time_budget_and_validation_patience():
    model, step = _problem()
    history = train.fit_loop(model, step, lr=0.01, max_iters=10_000, seed=0, callbacks=[train.TimeBudget(0.0)])
    assert history.stopped == "time budget (0 s) after 1 steps"
    model, step = _problem()
    history = train.fit_loop(model, step, lr=0.0, max_iters=100, seed=0,
                             callbacks=[train.Validation(lambda m: 1.0, every=1, patience=3)])
    assert history.stopped == "validation plateau after 4 steps"


def test_callbacks_end_even_when_a_step_fails():
    ended = []

    class Record(train.Callback):
        def end(self, state):
            ended.append(state.it)

    model, _ = _problem()

    def broken(rng):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train.fit_loop(model, broken, lr=0.1, max_iters=3, seed=0, callbacks=[Record()])
    assert ended == [-1]


def test_device_callback_moves_the_model_before_the_optimiser():
    model, step = _problem()
    history = train.fit_loop(model, step, lr=0.1, max_iters=2, seed=0,
                             callbacks=[train.ToDevice(torch.device("cpu"), channels_last=False)])
    assert len(history.loss) == 2 and np.isfinite(history.loss).all()


def test_validation_at_start_final_and_keep_best():
    """The untrained model is scored at step 0, the last step when it is not an evaluation step,
    and the weights of the best score are put back: here the score prefers the untrained weights
    (distance from them), so training moves away and the loop ends with the starting weights."""
    torch.manual_seed(0)
    model, step = _problem()
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def score(m):
        return float(sum((p - start[k]).abs().sum() for k, p in m.state_dict().items()))

    history = train.fit_loop(model, step, lr=0.1, max_iters=7, seed=0,
                             callbacks=[train.Validation(score, every=3, keep_best=True, at_start=True, final=True)])
    assert history.parts["validation_step"] == [0, 3, 6, 7]
    assert history.parts["validation"][0] == 0.0 and min(history.parts["validation"][1:]) > 0
    assert history.parts["best_step"] == [0]
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())
