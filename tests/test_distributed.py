"""Data-parallel fit over MPI, run for real under ``mpiexec -n 2`` (the MPICH wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bpgpu

HERE = Path(__file__).parent / "mpi"


def mpiexec(*args, n=2, timeout=240):
    pytest.importorskip("mpi4py")
    exe = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
    if not Path(exe).exists():
        pytest.skip("no mpiexec (pip install 'bpgpu[mpi]' brings the MPICH wheel)")
    return subprocess.run(
        [exe, "-n", str(n), sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("ranks", [2, 3])
def test_n_ranks_equal_the_single_process_fit(ranks):
    """sgd, momentum and Adam over 2 and 3 ranks (uneven shares): float64 within 1e-10 of
    the single-process fit, every rank's weights bit-identical, checkpoints from rank 0
    only, exact resume, mismatched data or arguments refused on every rank."""
    out = mpiexec(HERE / "fit_parallel.py", n=ranks)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr


def test_a_failing_rank_ends_the_job_with_its_message():
    t0 = time.perf_counter()
    out = mpiexec(HERE / "failing_rank.py", timeout=120)
    assert out.returncode != 0
    assert "bpgpu rank 1 of 2: RuntimeError: rank one lost its disk" in out.stderr
    assert "finished" not in out.stdout
    assert time.perf_counter() - t0 < 60  # ended, not left waiting in a collective


def test_bpgpu_train_distributed_writes_from_rank_0(tmp_path):
    out = mpiexec(
        "-m",
        "bpgpu",
        "train",
        "--distributed",
        "--epochs",
        "3",
        "--hidden",
        "32",
        "--backend",
        "numpy",
        "--no-plot",
        "-o",
        tmp_path / "m.npz",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("test accuracy") == 1 and "MPI: " in out.stdout
    assert "2 ranks" in out.stdout and "rank 1: numpy" in out.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    assert bpgpu.load(tmp_path / "m.npz").evaluate(*bpgpu.datasets.load_digits())["accuracy"] > 0.8


def test_comm_must_be_a_communicator():
    X, y = np.zeros((4, 2)), np.zeros(4, dtype=int)
    with pytest.raises(TypeError, match="mpi4py communicator"):
        bpgpu.MLP([2, 2], backend="numpy").fit(X, y, comm="world")


@pytest.mark.gpu
def test_cupy_ranks_sum_gradients_with_nccl():
    """One rank on one GPU is still a real NCCL communicator: the fused Allreduce path
    runs, and a data-parallel fit on CuPy equals the plain one."""
    from conftest import TOL, load_backend, rel_norm

    MPI = pytest.importorskip("mpi4py.MPI")
    cp = load_backend("cupy")
    flat = cp.asarray(np.arange(10.0))
    total = cp.allreduce(flat, MPI.COMM_WORLD)
    assert cp._nccl is not None  # NCCL, not host staging
    np.testing.assert_array_equal(cp.to_numpy(total), np.arange(10.0))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=64)
    X = rng.normal(size=(64, 5)) + y[:, None]
    a = bpgpu.MLP([5, 8, 3], backend=cp, dtype="float64")
    b = a.to(cp)
    a.fit(X, y, epochs=2, batch_size=16, optimizer="adam")
    b.fit(X, y, epochs=2, batch_size=16, optimizer="adam", comm=MPI.COMM_WORLD)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert rel_norm(wb, wa) <= 10 * TOL["float64"]
