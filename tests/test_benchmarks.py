"""The benchmark runner works end to end (speed targets live in the results, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import bpgpu


def test_bench_runs_and_writes_ratios(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bpgpu",
            "bench",
            "--workloads",
            "small",
            "--peers",
            "bpgpu,numpy-loop,gemm-floor",
            "--min-time",
            "0.05",
            "--repeat",
            "1",
            "--out",
            str(tmp_path),
            "--tag",
            "test",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "bench-test.json").read_text())
    rows = {r["peer"]: r for r in report["results"]["small"]}
    ours = rows["bpgpu[numpy]"]
    assert ours["steps_per_s"] > 0 and 0 < ours["floor_fraction"]
    assert ours["ratio"]["numpy-loop"] == ours["steps_per_s"] / rows["numpy-loop"]["steps_per_s"]
    assert 0 < ours["median_steps_per_s"] <= ours["steps_per_s"]  # the best round is the best
    assert report["machine"]["numpy"] and report["command"].startswith("python -m benchmarks")
    target = next(
        t for t in report["targets"] if t["versus"] == "numpy-loop" and t["bpgpu"] == "bpgpu[numpy]"
    )
    assert target["target"] == 0.85  # the loop computes no loss and no accuracy
    assert target["met"] == (target["measured"] >= target["target"])
    assert "| bpgpu[numpy] |" in (tmp_path / "bench-test.md").read_text()


def test_bench_refuses_an_unknown_workload():
    out = subprocess.run(
        [sys.executable, "-m", "bpgpu", "bench", "--workloads", "huge"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "unknown workload 'huge'" in out.stderr


def test_launch_counter_says_what_it_needs_without_a_gpu(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here: the gpu run counts for real")
    out = subprocess.run(
        [sys.executable, "-m", "bpgpu.bench.launches", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "no CUDA device" in out.stdout
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.gpu
def test_launch_counter_sees_cupy_kernels():
    """CUPTI through torch.profiler records CuPy's launches too (else the count is 0)."""
    from conftest import load_backend

    from bpgpu.bench import launches, peers
    from bpgpu.bench.workloads import WORKLOADS

    load_backend("cupy")
    w = WORKLOADS["small"]
    X, y = w.data()
    n = launches.count(peers.Bpgpu("cupy"), w, X, y)
    assert 5 < n < 500, n


class _FakeTorchCuda:
    """torch.cuda's memory statistics over a fake allocator."""

    def __init__(self):
        self.allocated = self.high = 0

    def alloc(self, n):
        self.allocated += n
        self.high = max(self.high, self.allocated)

    def memory_allocated(self, device=None):
        return self.allocated

    def max_memory_allocated(self, device=None):
        return self.high

    def reset_peak_memory_stats(self, device=None):
        self.high = self.allocated

    def synchronize(self, device=None):
        pass


def test_torch_peak_is_per_peer_not_process_wide():
    """The second peer's figure holds neither the first peer's resident arrays nor the
    first peer's high-water mark."""
    import types

    from bpgpu.bench import memory

    torch = types.SimpleNamespace(cuda=_FakeTorchCuda())
    with memory.torch_window(torch, "cuda:0") as first:
        torch.cuda.alloc(100)  # the first peer's data stays allocated
        torch.cuda.alloc(50)
        torch.cuda.alloc(-50)
    with memory.torch_window(torch, "cuda:0") as second:
        torch.cuda.alloc(30)
        torch.cuda.alloc(-30)
        torch.cuda.alloc(10)
    assert first["peak"] == 150 and second["peak"] == 30


def test_cupy_peak_counts_only_the_window():
    """CuPy's pool total is every array ever made; the hook counts in-window allocations
    and frees (CuPy calls it with keyword arguments)."""
    import types

    from bpgpu.bench import memory

    active = []

    class MemoryHook:  # CuPy's base class: `with hook:` installs it
        def __enter__(self):
            active.append(self)

        def __exit__(self, *exc):
            active.remove(self)

    cupy = types.SimpleNamespace(
        cuda=types.SimpleNamespace(
            MemoryHook=MemoryHook,
            Device=lambda: types.SimpleNamespace(synchronize=lambda: None),
        )
    )

    def malloc(n):
        for h in active:
            h.malloc_postprocess(device_id=0, size=n, mem_size=n, mem_ptr=1, pmem_id=1)

    def free(n):
        for h in active:
            h.free_postprocess(device_id=0, mem_size=n, mem_ptr=1, pmem_id=1)

    malloc(1000)  # another peer's, before the window
    with memory.cupy_window(cupy) as mem:
        malloc(64)
        malloc(32)
        free(64)
        malloc(16)
    malloc(500)  # after the window
    assert mem["peak"] == 96 and not active


def test_jax_peak_is_the_windows_own_or_unknown():
    """JAX's GPU peers were measured with torch's counter (0.0 MiB on the H200 run).
    JAX's high-water mark cannot be reset: a window that raises it gets its own peak
    above the bytes it started with; one that does not gets None, not a wrong figure."""
    from bpgpu.bench import memory

    class Device:
        used = high = 0

        def alloc(self, n):
            self.used += n
            self.high = max(self.high, self.used)

        def memory_stats(self):
            return {"bytes_in_use": self.used, "peak_bytes_in_use": self.high}

    dev = Device()
    dev.alloc(100)  # a peer before: its arrays stay
    with memory.jax_window(dev) as first:
        dev.alloc(300)
        dev.alloc(-300)
    with memory.jax_window(dev) as second:  # below the first's high-water mark
        dev.alloc(50)
        dev.alloc(-50)
    assert first["peak"] == 300 and second["peak"] is None

    class Cpu:  # JAX's CPU devices keep no statistics
        def memory_stats(self):
            return None

    with memory.jax_window(Cpu()) as cpu:
        pass
    assert cpu["peak"] is None


def test_cpu_peers_get_no_gpu_window():
    from bpgpu.bench import memory, peers

    with memory.window(peers.NumpyLoop()) as mem:
        pass
    assert "peak" not in mem


@pytest.mark.parametrize(
    "peers, message",
    [
        ("bpgpu[nunpy]", "unknown peer 'bpgpu[nunpy]'; valid peers: bpgpu[numpy]"),
        ("gemm-floor[cupy:cuda]", "cannot run here"),
    ],
)
def test_bench_refuses_peers_it_cannot_run(peers, message, tmp_path):
    """A typo or a GPU peer on a CPU machine must not run nothing and exit 0."""
    from bpgpu.bench import runner

    try:
        runner.select_peers([peers])
    except ValueError:
        pass
    else:
        pytest.skip(f"{peers} runs here")
    out = subprocess.run(
        [sys.executable, "-m", "bpgpu", "bench", "--peers", peers, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not list(tmp_path.iterdir())  # no empty result tables written


def test_every_available_peer_has_a_known_name():
    from bpgpu.bench import runner

    known = set(runner.known_peer_names())
    assert {p.name for p in runner.available_peers(None)} <= known


def _gpu_check(tmp_path, **env):
    import os
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    out = tmp_path / "out"
    run = subprocess.run(
        ["bash", str(script), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHON": sys.executable, **env},
    )
    return run, out


def test_gpu_check_brings_back_few_files_with_every_log_packed(tmp_path):
    """The device tool returns at most 8 files: the script leaves three, and packs each
    step's log and results into one archive (dry run on the CPU: the GPU steps fail)."""
    import tarfile

    run, out = _gpu_check(tmp_path, GPU_CHECK_STEPS="backends,compile")
    files = sorted(p.name for p in out.iterdir())
    assert files == ["device.txt", "gpu-results.tar.gz", "summary.txt"], files
    with tarfile.open(out / "gpu-results.tar.gz") as tar:
        names = {n.lstrip("./") for n in tar.getnames()}
    assert {"backends.txt", "compile.txt", "device.txt"} <= names
    summary = (out / "summary.txt").read_text()
    assert "backends: exit 0" in summary and "install" not in summary
    assert "setuptools:" in (out / "device.txt").read_text()
    # compile needs CuPy: without it the step fails, and so does the run
    assert ("compile: exit 0" in summary) == (run.returncode == 0)


def test_gpu_check_skips_what_the_budget_cannot_hold_and_says_so(tmp_path):
    run, out = _gpu_check(tmp_path, GPU_CHECK_STEPS="backends", GPU_CHECK_BUDGET="30")
    assert run.returncode == 1
    summary = (out / "summary.txt").read_text()
    assert "backends: NOT RUN" in summary and "GPU_CHECK_STEPS=backends" in summary
    assert (out / "gpu-results.tar.gz").exists()


def test_gpu_check_names_the_failed_tests_in_its_summary(tmp_path):
    """A GPU run is read from its summary: a test step's failures are named there (from
    pytest's -v lines, which a step stopped at its limit also leaves). On a CPU machine
    the GPU tests fail, as ``BPGPU_REQUIRE_GPU=1`` asks."""
    gpu = {"cupy", "torch:cuda", "jax:cuda"}
    if any(b["available"] and b["name"] in gpu for b in bpgpu.list_backends()):
        pytest.skip("a GPU is here: the GPU tests pass")
    run, out = _gpu_check(tmp_path, GPU_CHECK_STEPS="pytest_gpu_train")
    assert run.returncode == 1
    summary = (out / "summary.txt").read_text()
    assert "pytest_gpu_train: exit 1" in summary
    assert "   ! tests/test_training.py::test_fit_lowers_the_loss_on_every_backend[cupy]" in summary
    # a step run in the background with others (the last test groups) fails the run too
    run, out = _gpu_check(tmp_path, GPU_CHECK_STEPS="pytest_gpu_rest")
    assert run.returncode == 1 and "pytest_gpu_rest: exit 1" in (out / "summary.txt").read_text()


def test_gpu_check_runs_each_test_file_in_one_group():
    """The script's named test groups hold files that exist, none in two groups, and
    the rest group leaves all of them out (``--ignore``), so no gpu test runs twice and
    none is lost when a file moves between groups."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "benchmarks" / "gpu_check.sh").read_text()
    groups = dict(re.findall(r'^(GPU_[A-Z]+)="([^"]*)"$', text, flags=re.M))
    files = [f for g in groups.values() for f in g.split()]
    assert len(groups) >= 4 and len(files) == len(set(files)), groups
    assert all((root / f).is_file() for f in files), files
    ignored = re.search(r"for f in ((?:\$GPU_[A-Z]+ ?)+); do printf -- '--ignore", text)
    assert ignored and set(ignored.group(1).replace("$", "").split()) == set(groups)


def _wheel(folder, name, tag="py3-none-any"):
    """A minimal wheel of one module ``name`` (a wheel of another tag fails to install)."""
    import zipfile

    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}.py": "VALUE = 1\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ),
    }
    files[f"{info}/RECORD"] = "".join(f"{f},,\n" for f in [*files, f"{info}/RECORD"])
    path = folder / f"{name}-1.0-{tag}.whl"
    with zipfile.ZipFile(path, "w") as z:
        for f, text in files.items():
            z.writestr(f, text)
    return path


def test_gpu_check_installs_each_wheel_on_its_own(tmp_path):
    """A wheel for another Python (a cp311 build carried to the device's 3.12) once would
    have stopped pip and with it every other wheel: each is installed alone, and one that
    does not fit is named in the summary."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    _wheel(folder, "bpgpu_probe_ok")
    _wheel(folder, "bpgpu_probe_bad", tag="cp27-cp27m-win32")
    run, out = _gpu_check(tmp_path, GPU_CHECK_STEPS="backends", GPU_CHECK_WHEELS=str(folder))
    assert "wheel bpgpu_probe_ok-1.0-py3-none-any.whl: installed" in run.stdout, run.stdout
    summary = (out / "summary.txt").read_text()
    assert "wheel bpgpu_probe_bad-1.0-cp27-cp27m-win32.whl: NOT INSTALLED" in summary
    assert "backends: exit 0" in summary


def test_gpu_check_runs_test_files_that_exist():
    """A renamed test file must not silently drop out of the one GPU run."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "benchmarks" / "gpu_check.sh").read_text()
    for group in ("GPU_TRAIN", "GPU_CORE", "GPU_NETWORK"):
        files = re.search(group + r'="([^"]+)"', text).group(1).split()
        assert files and all((root / f).is_file() for f in files), (group, files)


def test_bench_by_default_writes_its_own_folder_and_shows_progress(tmp_path):
    """Never the committed benchmarks/results/ unless named; progress on stderr."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bpgpu",
            "bench",
            "--workloads",
            "small",
            "--peers",
            "numpy-loop",
            "--min-time",
            "0.01",
            "--repeat",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "bench-results" / "bench-cpu.json").exists()
    assert "bench: workload 1/1: small" in out.stderr
    assert "round 2/2, about" in out.stderr and "s left" in out.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "bpgpu", "bench", "--help"], capture_output=True, text=True
    ).stdout
    assert "mnist  784-512-512-10" in help_text and "gemm-floor[cupy:cuda]" in help_text


def test_mpi_bench_times_every_way_to_sum_the_gradients():
    """2 ranks: MPI's Allreduce, the shared-memory window's sum (checked equal to it in
    the worker) and the memory traffic beside them, each a positive time."""
    import shutil
    from pathlib import Path

    pytest.importorskip("mpi4py")
    exe = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
    if not Path(exe).exists():
        pytest.skip("no mpiexec (pip install -e '.[mpi]' brings the MPICH wheel)")
    cmd = [exe, "-n", "2", sys.executable, "-m", "benchmarks.mpi_bench", "--reductions"]
    out = subprocess.run([*cmd, "--workload", "small"], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert len(found["ms"]) == 6 and all(v > 0 for v in found["ms"].values())


def test_launch_breakdown_names_each_kernel_with_its_launches_per_step():
    """What makes up a launch count is read from the kernels' names: per workload and
    peer, the most launched first, the rest summed in one line."""
    from bpgpu.bench import launches

    names = {f"k{i}": 20.0 - i for i in range(14)}  # most first, as profile_epoch gives
    got = launches.Profiled(names, kernel_us=0.0, wall_us=1.0)
    text = "\n".join(launches.by_name_md({"small": {"bpgpu[cupy]": got}}, top=12))
    assert "### small, bpgpu[cupy]" in text
    assert "| 20.00 | `k0` |" in text and "| 9.00 | `k11` |" in text
    assert "`k12`" not in text and "| 15.00 | 2 other kernels |" in text  # 8 + 7


def test_compile_time_counts_the_kernels_a_call_added_to_cupys_cache(tmp_path, monkeypatch):
    from bpgpu.bench import compile_time

    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path))
    assert compile_time.cached_kernels() == 0
    (tmp_path / "a.cubin").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.cubin").write_bytes(b"")
    assert compile_time.cached_kernels() == 2


def test_launches_says_how_busy_each_peer_kept_the_gpu():
    from bpgpu.bench import launches

    got = launches.Profiled({"gemm": 2.0, "relu": 1.0}, 300.0, 400.0, 90.5, 1200.0)
    assert got.launches == 3.0 and got.busy == 0.75
    assert "| large | bpgpu[cupy] | 300.0 | 400.0 | 75% | 90.5 | 1200 |" in launches.busy_md(
        {"large": {"bpgpu[cupy]": got}}
    )


def test_launches_measures_the_gpus_idle_time_between_kernels():
    """The timeline's gaps: kernels in any order, overlapping ones (two streams) leave
    no gap, and the time before the first and after the last kernel is not idle."""
    from bpgpu.bench import launches

    spans = [(30.0, 40.0), (0.0, 10.0), (12.0, 20.0), (15.0, 25.0), (100.0, 101.0)]
    assert launches.idle(spans) == (2.0 + 5.0 + 60.0, 60.0)
    assert launches.idle([(0.0, 5.0)]) == (0.0, 0.0) and launches.idle([]) == (0.0, 0.0)


def test_lookahead_compares_the_fit_with_and_without_it(tmp_path, monkeypatch):
    """benchmarks.lookahead times both fits and reports their ratio; without look-ahead
    every epoch's numbers are read before the next is dispatched (the switch is
    really off inside the peer's fit, and back on after it)."""
    pytest.importorskip("jax")
    from benchmarks import lookahead
    from bpgpu.trainer import Trainer

    seen = []
    real = Trainer._epochs

    def epochs(self):
        seen.append(self.looks_ahead())
        return real(self)

    monkeypatch.setattr(Trainer, "_epochs", epochs)
    argv = ["--workloads", "small", "--repeat", "1", "--min-time", "0.01", "--out", str(tmp_path)]
    assert lookahead.main(argv) == 0
    report = json.loads((tmp_path / "lookahead-jax.json").read_text())
    rows = {r["peer"]: r for r in report["results"]["small"]}
    ours, off = rows["bpgpu[jax]"], rows["bpgpu-noahead[jax]"]
    assert ours["vs_off"] == ours["steps_per_s"] / off["steps_per_s"]
    assert True in seen and False in seen
    assert Trainer.looks_ahead is not None and Trainer.looks_ahead.__name__ == "looks_ahead"
    assert "| small | bpgpu[jax] |" in (tmp_path / "lookahead-jax.md").read_text()


@pytest.mark.slow  # TorchInductor compiles for about 20 s on two CPU cores
def test_the_torch_compile_peer_trains_the_same_loop():
    """torch-compile[...] is torch-eager's loop with the model compiled: from the same
    initial weights and batch order, the same weights after an epoch (float32, the
    compiled kernels' order of sums)."""
    torch = pytest.importorskip("torch")
    from benchmarks import peers as P
    from benchmarks.workloads import WORKLOADS

    w = WORKLOADS["small"]
    X, y = w.data()
    eager, compiled = P.TorchEager("cpu"), P.TorchCompile("cpu")
    for peer in (eager, compiled):
        peer.prepare(w, X, y)
        peer.train(1)
    assert compiled.name == "torch-compile[cpu]"
    for a, b in zip(eager.model.parameters(), compiled.model.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_every_peer_the_runner_can_build_is_a_name_it_accepts():
    """gpu_check.sh asks for peers by name: every peer available_peers builds (graphs,
    mixed precision, torch-compile included) must be one select_peers knows."""
    from benchmarks import runner

    known = set(runner.known_peer_names())
    built = {p.name for p in runner.available_peers(None)}
    assert built <= known, built - known
    for name in ("bpgpu-graphs[cupy]", "bpgpu-fp16[cupy]", "bpgpu-bf16[torch:cuda]"):
        assert name in known
    assert "torch-compile[cuda]" in known
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh").read_text()
    wanted = script.split('WANT="', 1)[1].split('"', 1)[0].split(",")
    assert set(wanted) <= known, set(wanted) - known
