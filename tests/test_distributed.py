"""The chunked path on a dask.distributed LocalCluster: same result, weights once per worker,
and a worker killed mid-run is replaced without corrupting the output."""

import os

import dask
import numpy as np
import pytest
import xarray as xr
from conftest import QUICK

import xlatent
from xlatent import datasets

distributed = pytest.importorskip("distributed")

# a TV-L1 starting field, seconds a chunk: the cluster is under test (the default stationary velocity
# per chunk runs the same per-chunk code, xlatent.motion.estimators.estimate, and costs ~45 s more here)
SMALL = {"unet_levels": 2, "flow_pool": 2, "stages": 2, "flow_prior": "tvl1"}


@pytest.fixture(scope="module")
def client():
    # 2 worker processes x 1 thread on loopback, no dashboard; the nanny restarts a dead worker
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
        with distributed.Client(cluster) as c:
            yield c
        cluster.close()


def _builds():
    from xlatent.chunked import graph

    return graph.builds


def _kill_once(marker):
    """On a worker: make the next frames block kill its process, once across the cluster."""
    from xlatent.chunked import latent_model

    real = latent_model._frames_block

    def dying(*args, **kwargs):
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker dies mid-task, as on a node failure
        return real(*args, **kwargs)

    latent_model._frames_block = dying


def test_local_cluster_same_result_weights_once_and_worker_loss(client, tmp_path):
    # 256 cells in chunks of 128: 2 x 2 model chunks even with the overlap (100+ cells) of the
    # default TV-L1 starting field, so that every layer really runs per chunk on the workers
    case = datasets.translation(size=256, steps=1)
    model = xlatent.fit(case.first, case.last, **SMALL, **QUICK)
    a, b = case.first.chunk(128), case.last.chunk(128)
    frames, flow = model.frames(1, a, b, progress=False), model.flow(a, b, progress=False)
    assert min(frames.data.numblocks[-2:]) >= 2
    ref, ref_flow = dask.compute(frames, flow, scheduler="threads")  # slices of the same tasks
    # close to the in-memory result of the same model: mean difference under 2 % of the spread
    in_memory = model.frames(1, case.first, case.last, progress=False)
    assert float(abs(ref - in_memory).mean()) < 0.02 * float(in_memory.std())

    # a worker process dies during a frames block: dask reruns its tasks on a fresh worker
    marker = str(tmp_path / "killed")
    client.run(_kill_once, marker)
    store = tmp_path / "frames.zarr"
    frames.to_dataset(name="frames").to_zarr(store, compute=False).compute()  # on the client
    assert os.path.exists(marker)  # a worker did die
    np.testing.assert_allclose(xr.open_zarr(store).frames, ref, atol=1e-5)
    # 2 x 2 chunks x (fields + frames) ran on 2 workers; each process built the model once at most
    builds = client.run(_builds)
    assert set(builds.values()) <= {0, 1} and sum(builds.values()) >= 1

    # the band-by-band writer runs its bands on the cluster too, same content
    xlatent.save_result(frames, flow, tmp_path / "result.zarr", band=1, progress=False)
    got_frames, got_flow = xlatent.open_result(tmp_path / "result.zarr")
    np.testing.assert_allclose(got_frames, ref, atol=1e-5)
    np.testing.assert_allclose(got_flow.u, ref_flow.u, rtol=1e-5, atol=1e-9)
