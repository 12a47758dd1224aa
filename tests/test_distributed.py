"""Data-parallel fit over MPI, run for real under ``mpiexec -n 2`` (the MPICH wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import bpgpu

HERE = Path(__file__).parent / "mpi"


def mpiexec(*args, n=2, timeout=240):
    pytest.importorskip("mpi4py")
    exe = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
    if not Path(exe).exists():
        pytest.skip("no mpiexec (pip install -e '.[mpi]' brings the MPICH wheel)")
    return subprocess.run(
        [exe, "-n", str(n), sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("ranks", [2, 3])
def test_n_ranks_equal_the_single_process_fit(ranks):
    """sgd, momentum and Adam over 2 and 3 ranks (uneven shares), on NumPy and torch:
    float64 within 1e-10 of the single-process fit, every rank's weights bit-identical,
    checkpoints from rank 0 only, exact resume, Ctrl-C on one rank stopping all at the
    same batch, mismatched data or arguments refused on every rank."""
    out = mpiexec(HERE / "fit_parallel.py", n=ranks)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr


def test_the_gpu_ranks_script_runs_on_cpu_backends(monkeypatch):
    """``fit_gpu.py`` (the GPU test below) on CPU backends, so that it is known to work
    before a GPU runs it."""
    pytest.importorskip("torch")
    monkeypatch.setenv("BPGPU_MPI_GPU_BACKENDS", "torch,jax")
    out = mpiexec(HERE / "fit_gpu.py")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr
    assert "torch: ranks on torch, torch; gradients summed by host" in out.stdout


@pytest.mark.gpu
def test_gpu_ranks_equal_the_single_process_fit(monkeypatch):
    """Two ranks on the GPU backends here (CuPy, torch CUDA, JAX CUDA), each on its own
    GPU by ``rank_backend`` or sharing one: float64 within 1e-10 of the single-process
    fit, bit-identical ranks, streamed data included."""
    import os

    names = ("cupy", "torch:cuda", "jax:cuda")
    if not any(r["available"] for r in bpgpu.list_backends() if r["name"] in names):
        if os.environ.get("BPGPU_REQUIRE_GPU") == "1":
            pytest.fail("no GPU backend can load on a run that requires the GPU")
        pytest.skip("no GPU backend here")
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # two JAX processes, one GPU
    out = mpiexec(HERE / "fit_gpu.py", timeout=400)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr
    print(out.stdout)


def test_ranks_share_the_cores_of_their_machine():
    """2 ranks on this machine: each runs the cores / 2 BLAS and torch threads while it
    trains (not a thread per core each: 2 ranks ran 4x slower than one process so), and
    its own count again afterwards; OMP_NUM_THREADS set by the user is left alone."""
    import json

    pytest.importorskip("torch")
    pytest.importorskip("threadpoolctl")
    from bpgpu.backends._base import cores

    out = mpiexec(HERE / "threads.py", timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    share = max(1, cores() // 2)
    for rank in json.loads(out.stdout.strip().splitlines()[-1]):
        for backend, seen in rank.items():
            assert seen["during"] == [share, share], (backend, seen)
            assert seen["after"] == seen["before"], (backend, seen)


def test_threads_per_process_shares_the_cores_unless_the_user_set_them(monkeypatch):
    from bpgpu.backends import _base

    for v in _base.THREAD_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setattr(_base, "cores", lambda: 16)
    assert _base.threads_per_process(1) is None  # one process: the library's own count
    assert _base.threads_per_process(2) == 8
    assert _base.threads_per_process(3) == 5
    assert _base.threads_per_process(32) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert _base.threads_per_process(2) is None


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
    assert out.stdout.count("gradients summed by MPI in host memory") == 2
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    assert bpgpu.load(tmp_path / "m.npz").evaluate(*bpgpu.datasets.load_digits())["accuracy"] > 0.8


def test_comm_must_be_a_communicator():
    X, y = np.zeros((4, 2)), np.zeros(4, dtype=int)
    with pytest.raises(TypeError, match="mpi4py communicator"):
        bpgpu.MLP([2, 2], backend="numpy").fit(X, y, comm="world")


class Gather:
    """A stand-in communicator: ``allgather`` answers with the ranks' given values;
    ``Allreduce`` doubles the buffer in place (a second rank with the same values)."""

    def __init__(self, others=()):
        self.others = [list(o) for o in others]

    def allgather(self, mine):
        return [mine, *self.others]

    def Allreduce(self, sendbuf, recvbuf, op=None):
        np.multiply(recvbuf, 2, out=recvbuf)


ALL = ["nccl", "cuda-aware", "host"]


@pytest.mark.parametrize(
    "others, expected",
    [
        ([(ALL, ("node1", "gpu1"))], "nccl"),
        ([(["cuda-aware", "host"], ("node1", "gpu1"))], "cuda-aware"),
        ([(["nccl", "host"], ("node1", "gpu1")), (["cuda-aware", "host"], None)], "host"),
        ([(["host"], None)], "host"),
        ([(ALL, ("node2", "gpu0"))], "nccl"),  # the same bus id on another machine
    ],
)
def test_ranks_agree_on_the_best_path_every_rank_has(others, expected):
    """A rank on NCCL and another on MPI would wait for each other forever."""
    from bpgpu.backends._mpi import agree_on_path

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no GPU is shared: no warning
        assert agree_on_path(Gather(others), ALL, ("node1", "gpu0")) == expected


@pytest.mark.parametrize("mine, expected", [(ALL, "cuda-aware"), (["nccl", "host"], "host")])
def test_ranks_on_one_gpu_do_not_take_nccl_and_are_told_why(mine, expected):
    """NCCL refuses two ranks on one GPU (a script whose ranks all built ``cupy``):
    the next path every rank has, and a warning naming the ranks and the fix."""
    from bpgpu.backends._mpi import agree_on_path

    others = [(mine, ("node1", "gpu1")), (mine, ("node1", "gpu0"))]
    with pytest.warns(UserWarning, match=r"ranks 0, 2 share a GPU .*rank_backend\(comm"):
        assert agree_on_path(Gather(others), mine, ("node1", "gpu0")) == expected


def test_rank_backend_puts_each_rank_of_a_machine_on_its_own_gpu(monkeypatch):
    """``cupy`` -> ``cupy:N`` (torch and JAX alike) by the rank on its machine modulo
    its GPUs; ``auto`` without a GPU is NumPy; other names are kept."""
    pytest.importorskip("mpi4py.MPI")
    from types import SimpleNamespace

    from bpgpu.distributed import rank_backend

    class Machine:  # this rank is the 4th on its machine
        def Split_type(self, kind):
            return self

        def Get_rank(self):
            return 3

        def Free(self):
            pass

    gpus = SimpleNamespace(cuda=SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=lambda: 2)))
    torch = SimpleNamespace(cuda=SimpleNamespace(device_count=lambda: 3))
    fake = {"cupy": SimpleNamespace(library="cupy", cupy=gpus)}
    fake["torch:cuda"] = SimpleNamespace(library="torch", torch=torch)
    jax = SimpleNamespace(devices=lambda kind: ["gpu0", "gpu1", "gpu2", "gpu3"])
    fake["jax:cuda"] = SimpleNamespace(library="jax", jax=jax)
    real = bpgpu.backends.get_backend
    monkeypatch.setattr(bpgpu.backends, "get_backend", lambda name: fake.get(name) or real(name))
    assert rank_backend(Machine(), "cupy") == "cupy:1"
    assert rank_backend(Machine(), "torch:cuda") == "torch:cuda:0"
    assert rank_backend(Machine(), "jax:cuda") == "jax:cuda:3"
    assert rank_backend(Machine(), "numpy") == "numpy"
    monkeypatch.setenv("BPGPU_BACKEND", "cupy")
    assert rank_backend(Machine()) == "cupy:1"
    monkeypatch.setattr(bpgpu.backends, "get_backend", real)
    monkeypatch.delenv("BPGPU_BACKEND")
    if not any(r["available"] for r in bpgpu.list_backends() if r["name"] == "cupy"):
        assert rank_backend(Machine(), "auto") == "numpy"


def test_cuda_aware_mpi_is_asked_or_told(monkeypatch):
    from bpgpu.backends._mpi import cuda_aware_mpi

    monkeypatch.setenv("BPGPU_CUDA_AWARE_MPI", "1")
    assert cuda_aware_mpi() is True
    monkeypatch.setenv("BPGPU_CUDA_AWARE_MPI", "0")
    assert cuda_aware_mpi() is False
    monkeypatch.setenv("BPGPU_CUDA_AWARE_MPI", "maybe")
    with pytest.raises(ValueError, match="BPGPU_CUDA_AWARE_MPI must be 1 or 0"):
        cuda_aware_mpi()
    monkeypatch.delenv("BPGPU_CUDA_AWARE_MPI")
    pytest.importorskip("mpi4py.MPI")
    assert isinstance(cuda_aware_mpi(), bool)  # the library's own answer


def test_mpi_library_functions_are_found():
    """The query reaches the MPI library mpi4py loaded (MPICH and Open MPI have it)."""
    MPI = pytest.importorskip("mpi4py.MPI")
    from bpgpu.backends._mpi import _mpi_function

    if not MPI.Get_library_version().startswith(("MPICH", "Open MPI")):
        pytest.skip("another MPI library")
    assert _mpi_function("MPI_Comm_rank") is not None
    assert _mpi_function("no_such_function_in_mpi") is None


def test_cpu_backends_sum_in_host_memory():
    from conftest import load_backend

    for name in ("numpy", "torch"):
        try:
            b = load_backend(name)
        except pytest.skip.Exception:
            continue
        assert b.reduction_paths() == ["host"]
        assert b.reduction(Gather([(["host"], None)])) == "host"


def test_torch_cpu_tensors_are_summed_in_place_without_a_copy():
    """Through a NumPy view of the tensor's memory (DLPack): the tensor itself holds
    the sum."""
    pytest.importorskip("mpi4py.MPI")
    from conftest import load_backend

    b = load_backend("torch")
    grads = [b.asarray(np.arange(6.0).reshape(2, 3)), b.asarray(np.ones(3))]
    where = [g.data_ptr() for g in grads]
    out = b.allreduce_arrays(grads, Gather())
    assert [o.data_ptr() for o in out] == where
    np.testing.assert_array_equal(b.to_numpy(out[0]), 2 * np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(b.to_numpy(out[1]), 2 * np.ones(3))


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cupy", "torch:cuda"])
def test_gpu_ranks_sum_gradients_with_nccl(name, monkeypatch):
    """One rank on one GPU is still a real NCCL communicator: the in-place device
    Allreduce runs (CuPy's arrays, torch's tensors by their device pointers), and a
    data-parallel fit equals the plain one."""
    from conftest import TOL, load_backend, rel_norm

    MPI = pytest.importorskip("mpi4py.MPI")
    from bpgpu.backends._mpi import has_nccl

    if not has_nccl():
        pytest.skip("CuPy with NCCL is not installed")
    b = load_backend(name)
    monkeypatch.setattr(b, "_reduction", None, raising=False)  # chosen afresh here
    flat = b.asarray(np.arange(10.0))
    total = b.allreduce(flat, MPI.COMM_WORLD)
    assert b.reduction(MPI.COMM_WORLD) == "nccl"  # not host staging
    np.testing.assert_array_equal(b.to_numpy(total), np.arange(10.0))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=64)
    X = rng.normal(size=(64, 5)) + y[:, None]
    for opt in ("sgd", "adam"):
        a = bpgpu.MLP([5, 8, 3], backend=b, dtype="float64")
        c = a.to(b)
        a.fit(X, y, epochs=2, batch_size=16, optimizer=opt)
        c.fit(X, y, epochs=2, batch_size=16, optimizer=opt, comm=MPI.COMM_WORLD)
        for wa, wc in zip(a.get_weights(), c.get_weights()):
            assert rel_norm(wc, wa) <= 10 * TOL["float64"], opt


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["cupy", "torch:cuda"])
def test_gpu_buffers_go_straight_to_a_cuda_aware_mpi(name, monkeypatch):
    """Without NCCL, a CUDA-aware MPI library reads device memory itself."""
    MPI = pytest.importorskip("mpi4py.MPI")
    from conftest import load_backend

    from bpgpu.backends import _mpi

    if not _mpi.cuda_aware_mpi():
        pytest.skip("this MPI library is not CUDA-aware")
    monkeypatch.setattr(_mpi, "has_nccl", lambda: False)
    b = load_backend(name)
    monkeypatch.setattr(b, "_reduction", None, raising=False)  # chosen afresh here
    assert b.reduction(MPI.COMM_WORLD) == "cuda-aware"
    total = b.allreduce(b.asarray(np.arange(10.0)), MPI.COMM_WORLD)
    np.testing.assert_array_equal(b.to_numpy(total), np.arange(10.0))
