"""The CUDA C in backends/cupy_kernels.py, checked without a GPU.

CuPy compiles these strings on the GPU machine at first use, so a typo would only show
there. Here: every body compiles with nvcc (where it is installed), and the one
hand-written kernel with block reductions, softmax cross-entropy, runs on the CPU (one
pthread per CUDA thread, ``__syncthreads`` a barrier) and is compared with NumPy. The
real kernels on a real GPU: ``tests/test_fast_paths.py``, marked ``gpu``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bpgpu import optimizers
from bpgpu.activations import ACTIVATIONS
from bpgpu.backends.cupy_kernels import _SOFTMAX_CCE

CTYPES = {"float": np.float32, "double": np.float64}
HERE = Path(__file__).parent
FUSED = {name: act for name, act in ACTIVATIONS.items() if act.c_f is not None}


def test_every_activation_but_softmax_has_its_kernel_expressions():
    assert set(FUSED) == {n for n, a in ACTIVATIONS.items() if a.hidden_ok}
    assert all(a.c_vjp is not None for a in FUSED.values())


# Each activation's C expressions as host C++: CUDA's math functions are C's, so the
# same text compiled by g++ computes what the kernel computes (to the last bit where
# both follow IEEE 754; the tolerance below covers libm's last-place differences).
_HOST_EVAL = r"""
#include <cmath>
#include <cstdio>
using namespace std;
typedef %(T)s T;
int main() {
  int n;
  if (scanf("%%d", &n) != 1) return 2;
  for (int i = 0; i < n; ++i) {
    double xw_, b_, g_, a_;
    if (scanf("%%lf %%lf %%lf %%lf", &xw_, &b_, &g_, &a_) != 4) return 3;
    const T xw = (T)xw_, b = (T)b_, g = (T)g_, a = (T)a_;
    const T z = xw + b;
    const T y = %(f)s;
    const T x = z;
    const T d = %(vjp)s;
    printf("%%.17g %%.17g\n", (double)y, (double)d);
  }
  return 0;
}
"""

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-3, -1e-3, 0.7, -0.7, 5.0, -5.0, 40.0, -40.0]


@pytest.mark.parametrize("ctype", CTYPES)
@pytest.mark.parametrize("name", sorted(FUSED))
def test_kernel_expressions_compute_what_the_generic_code_computes(name, ctype, tmp_path):
    """f and f'(x) g from each activation's C expressions, compiled on the host, against
    its Array API functions on NumPy, over NaN, +-inf, 0 and ordinary values: a fused
    kernel that maps NaN to 0 (and so hides a divergence) fails here."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    act = FUSED[name]
    src = tmp_path / "eval.cpp"
    src.write_text(_HOST_EVAL % {"T": ctype, "f": act.c_f, "vjp": act.c_vjp})
    exe = tmp_path / "eval"
    build = subprocess.run(
        ["g++", "-O0", "-o", str(exe), str(src)], capture_output=True, text=True, timeout=120
    )
    assert build.returncode == 0, build.stderr
    dtype = CTYPES[ctype]
    z = np.array(SPECIAL, dtype=dtype)
    g = np.array([1.5, -2.0, np.nan, np.inf, 0.25], dtype=dtype)
    Z, G = (a.ravel() for a in np.meshgrid(z, g, indexing="ij"))
    alpha = dtype(0.25)  # PReLU's slope
    rows = "\n".join(f"{float(zi)!r} 0.0 {float(gi)!r} {float(alpha)!r}" for zi, gi in zip(Z, G))
    run = subprocess.run(
        [str(exe)], input=f"{Z.size}\n{rows}\n", capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    got = np.array(run.stdout.split(), dtype=np.float64).reshape(-1, 2)
    xp = __import__("array_api_compat.numpy", fromlist=["numpy"])
    a = np.full(Z.shape, alpha) if act.has_param else None
    with np.errstate(all="ignore"):
        Y = act.f(xp, Z, a)
        D = act.vjp(xp, Z, Y, G, a)
    tol = 4 * np.finfo(dtype).eps
    for what, want, have in (("f", Y, got[:, 0]), ("f'*g", D, got[:, 1])):
        want = want.astype(np.float64)
        assert np.array_equal(np.isnan(want), np.isnan(have)), (what, Z, want, have)
        ok = ~np.isnan(want)
        close = np.isclose(have[ok], want[ok], rtol=tol, atol=tol)
        assert close.all(), (what, Z[ok][~close], want[ok][~close], have[ok][~close])


def nvcc_ptx(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not installed")
    cu = tmp_path / "k.cu"
    cu.write_text(source)
    return subprocess.run(
        ["nvcc", "-ptx", "-arch=sm_80", str(cu), "-o", str(tmp_path / "k.ptx")],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_elementwise_bodies_compile(tmp_path):
    lines = []
    for ctype in CTYPES:
        lines.append(f"namespace as_{ctype} {{ typedef {ctype} T;")
        for name, act in FUSED.items():
            lines.append(
                f"__device__ void f_{name}(T xw, T b, T a, T& z, T& y) "
                f"{{ z = xw + b; y = {act.c_f}; }}"
            )
            lines.append(
                f"__device__ void b_{name}(T x, T y, T g, T a, T& d) {{ d = {act.c_vjp}; }}"
            )
        for name, cls in optimizers.OPTIMIZERS.items():
            hyper, body = cls.c_update
            args = ["T g", *(f"T {h}" for h in hyper), "T& p", *(f"T& {s}" for s in cls.slots)]
            lines.append(f"__device__ void o_{name}({', '.join(args)}) {{ {body}; }}")
        lines.append("}")
    out = nvcc_ptx(tmp_path, "\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("ctype", CTYPES)
def test_softmax_kernel_compiles(ctype, tmp_path):
    out = nvcc_ptx(tmp_path, f"typedef {ctype} T;\n" + _SOFTMAX_CCE)
    assert out.returncode == 0, out.stderr
    assert "bpgpu_softmax_cce" in (tmp_path / "k.ptx").read_text()


@pytest.mark.parametrize("ctype", CTYPES)
def test_softmax_kernel_logic_on_the_cpu(ctype, tmp_path):
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    shared = "extern __shared__ double bpgpu_smem[];"
    assert shared in _SOFTMAX_CCE
    kernel = tmp_path / "kernel.inc"
    kernel.write_text(
        f"typedef {ctype} T;\n"
        + _SOFTMAX_CCE.replace(shared, "double* bpgpu_smem = shared_memory;")
    )
    exe = tmp_path / "emulator"
    build = subprocess.run(
        ["g++", "-O1", "-pthread", f'-DBPGPU_KERNEL="{kernel}"', "-o", str(exe)]
        + [str(HERE / "cuda" / "block_emulator.cpp")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    dtype = CTYPES[ctype]
    tol = 1e-6 if dtype is np.float32 else 1e-14
    for B, n in ((5, 1), (7, 3), (4, 10), (3, 300), (2, 1000)):  # 1 to 4 values a thread
        threads = 32
        while threads < n and threads < 256:  # as CupyFastPaths.softmax_cce picks it
            threads *= 2
        rng = np.random.default_rng(n)
        X = rng.normal(scale=5.0, size=(B, n)).astype(dtype)
        X[0] += 900.0  # the row max must be taken out before exp
        T = np.eye(n, dtype=dtype)[rng.integers(0, n, size=B)]
        data = "\n".join(repr(float(v)) for v in np.concatenate([X.ravel(), T.ravel()]))
        run = subprocess.run(
            [str(exe), str(B), str(n), str(threads), "0.25"],
            input=data,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        v = np.array(run.stdout.split(), dtype=np.float64)
        Y, D, rows = v[: B * n].reshape(B, n), v[B * n : 2 * B * n].reshape(B, n), v[2 * B * n :]
        Z = X.astype(np.float64) - X.max(axis=1, keepdims=True)
        s = np.exp(Z).sum(axis=1, keepdims=True)
        Y_ref = np.exp(Z) / s
        for got, want in (
            (Y, Y_ref),
            (D, 0.25 * (Y_ref - T)),
            (rows, (T * (np.log(s) - Z)).sum(1)),
        ):
            err = np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300)
            assert err <= tol, (B, n, err)


_OPT_EVAL = r"""
#include <cmath>
#include <cstdio>
using namespace std;
typedef double T;
int main() {
  T g, p, %(decl)s;
  if (scanf("%%lf %%lf", &g, &p) != 2) return 2;
  %(read)s
  %(body)s;
  printf("%%.17g%(fmt)s\n", p%(out)s);
  return 0;
}
"""


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_optimizer_kernel_text_computes_the_python_rule(name, tmp_path):
    """Each built-in optimizer's C update (what the CuPy kernel runs) against its own
    Python ``update``, at step 3 from non-zero state: one rule, two spellings, checked."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    cls = optimizers.OPTIMIZERS[name]
    opt = cls(lr=0.05)
    hyper, body = cls.c_update
    names = list(hyper) + list(cls.slots)
    h = opt.hyper(3)
    rng = np.random.default_rng(3)
    g, p = rng.normal(size=2)
    slots = {s: abs(rng.normal()) for s in cls.slots}
    src = _OPT_EVAL % {
        "decl": ", ".join(names),
        "read": " ".join(f'if (scanf("%lf", &{n}) != 1) return 3;' for n in names),
        "body": body,
        "fmt": " %.17g" * len(cls.slots),
        "out": "".join(f", {s}" for s in cls.slots),
    }
    (tmp_path / "o.cpp").write_text(src)
    exe = tmp_path / "o"
    build = subprocess.run(["g++", "-o", str(exe), str(tmp_path / "o.cpp")], capture_output=True)
    assert build.returncode == 0, build.stderr
    values = [g, p] + [h[n] for n in hyper] + [slots[s] for s in cls.slots]
    run = subprocess.run(
        [str(exe)], input=" ".join(repr(float(v)) for v in values), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    got = [float(v) for v in run.stdout.split()]
    state = {"t": 2, **{s: [np.array([slots[s]])] for s in cls.slots}}
    updates, new = opt.update([np.array([g])], state, [np.array([p])])
    want = [p + updates[0][0]] + [new[s][0][0] for s in cls.slots]
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-16)
    assert new["t"] == 3
