"""compare_backends and `bpgpu check`: every backend agrees, and a disagreement is named."""

from __future__ import annotations

import subprocess
import sys
import types

import array_api_compat.numpy as np_xp
import numpy as np
import pytest

from bpgpu import cli
from bpgpu.backends.numpy_backend import NumpyBackend
from bpgpu.backends.numpy_fast import NumpyOps
from bpgpu.consistency import Case, compare_backends, default_suite


class Sabotaged(NumpyBackend):
    """NumPy with a tanh that is off by one part in 1e9 (or ``off``): float64 must
    catch it."""

    def __init__(self, off=1e-9):
        super().__init__()
        self.name = "sabotaged"
        ns = types.SimpleNamespace(**{k: getattr(np_xp, k) for k in dir(np_xp) if k[0] != "_"})
        ns.tanh = lambda x: np.tanh(x) * np.asarray(1 + off, dtype=x.dtype)
        self.xp = ns
        self._ops = NumpyOps(ns)


def test_suite_covers_every_pair_and_a_deep_and_a_wide_net():
    names = {c.name for c in default_suite()}
    assert "relu/softmax/categorical_cross_entropy" in names
    assert "prelu/sigmoid/cross_entropy" in names
    assert "binary_step/identity/quadratic" in names
    assert {"deep", "wide"} <= names
    assert len(names) == 10 * 13 + 2  # hidden activations x (output, cost) pairs


def test_every_available_backend_agrees_with_the_reference(backend):
    report = compare_backends([backend.name, "numpy"])
    assert report.rows and report.ok, report.failures()
    assert {r.dtype for r in report.rows} == {"float64", "float32"}


def test_a_disagreement_is_reported_with_its_tensor():
    case = Case("tanh-net", (4, 5, 3), "tanh", "sigmoid", "cross_entropy")
    report = compare_backends([Sabotaged()], dtypes=("float64",), suite=[case])
    assert not report.ok
    text = "\n".join(report.failures())
    assert "sabotaged float64" in text and "(tanh-net)" in text
    assert "dW1" in text or "D1" in text


def test_unavailable_backend_is_listed_not_run(monkeypatch):
    from bpgpu import backends

    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy were not installed
    monkeypatch.setattr(backends, "_cache", {})
    report = compare_backends(["cupy", "numpy"], dtypes=("float32",), suite=default_suite()[:2])
    assert "cupy is not importable" in report.skipped["cupy"]
    assert [r.backend for r in report.rows] == ["numpy"]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "bpgpu", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_check_passes_and_prints_the_table():
    out = run_cli("check", "--backends", "numpy,array_api_strict", "--dtype", "float32")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "| array_api_strict | float32 |" in out.stdout
    assert "agreement within tolerance: array_api_strict, numpy" in out.stdout


def test_cli_check_exits_1_naming_the_tensor(monkeypatch, capsys):
    import bpgpu.consistency as consistency

    real = consistency.compare_backends
    case = Case("tanh-net", (4, 5, 3), "tanh", "sigmoid", "cross_entropy")
    monkeypatch.setattr(
        consistency,
        "compare_backends",
        lambda backends, dtypes, seed, precision=None: real([Sabotaged()], dtypes, [case], seed),
    )
    assert cli.main(["check", "--dtype", "float64"]) == 1
    out = capsys.readouterr().out
    assert "FAIL sabotaged float64" in out and "(tanh-net)" in out


def test_cli_check_names_an_unavailable_backend():
    out = run_cli("check", "--backends", "torch:mps", "--dtype", "float32")
    assert out.returncode == 1
    assert "not run: torch:mps" in out.stdout


def test_cli_usage_errors_exit_2():
    assert run_cli("check", "--dtype", "float16").returncode == 2
    assert run_cli("nonsense").returncode == 2
    assert run_cli("check", "--backends", "nunpy").returncode == 2


def test_cli_backends_lists_every_known_backend():
    out = run_cli("backends")
    assert out.returncode == 0
    from bpgpu.backends import names

    for name in names():
        assert f"\n{name} " in out.stdout
    assert "numpy              yes" in out.stdout


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"], ["backends", "--help"]])
def test_help_everywhere(args):
    out = run_cli(*args)
    assert out.returncode == 0 and "usage: bpgpu" in out.stdout


def test_a_backend_that_did_not_run_is_not_agreement(monkeypatch):
    from bpgpu import backends

    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    monkeypatch.setattr(backends, "_cache", {})
    report = compare_backends(["numpy", "torch"], dtypes=("float32",), suite=default_suite()[:1])
    assert [r.backend for r in report.rows] == ["numpy"] and report.rows[0].ok
    assert not report.ok
    assert any("torch did not run" in f for f in report.failures())


def test_errors_are_relative_norms_not_max_abs():
    """||a - ref|| / ||ref|| (section 5): one entry off by 1 in a 100-vector of ones."""
    from bpgpu.consistency import _rel

    ref = np.ones(100)
    a = ref.copy()
    a[0] += 1.0
    assert _rel(a, ref) == pytest.approx(1.0 / 10.0, rel=1e-12)  # max-abs would give 1.0
    b = ref + 0.01
    assert _rel(b, ref) == pytest.approx(0.01, rel=1e-12)  # 2-norm over 2-norm
    # against the size of what ref sums where that is larger; never an overflowed size
    assert _rel(b, ref, size=100.0) == pytest.approx(0.1 / 100, rel=1e-12)
    assert _rel(b, ref, size=0.1) == pytest.approx(0.01, rel=1e-12)
    assert _rel(b, ref, size=np.inf) == pytest.approx(0.01, rel=1e-12)


def test_a_users_network_and_batch_compare_on_every_backend(backend):
    """compare_backends(net, X, T): the user's weights and input scaling, on their batch."""
    import bpgpu

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(24, 5)) * 10 + 3, rng.integers(0, 3, size=24)
    net = bpgpu.MLP([5, 7, 3], hidden="elu", backend="numpy", dtype="float64", seed=2)
    net.set_input_scaling(X.mean(axis=0), X.std(axis=0))
    before = net.get_weights()
    report = compare_backends(net, X, y, backends=[backend.name])
    assert report.ok, report.failures()
    assert [(r.backend, r.dtype) for r in report.rows] == [(backend.name, "float64")]
    assert report.cases == 1
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)  # the user's network is not stepped
    both = compare_backends(net, X, y, backends=[backend.name], dtypes=("float32", "float64"))
    assert both.ok and {r.dtype for r in both.rows} == {"float32", "float64"}
    one = compare_backends(net, X, y, backends=[backend.name], dtypes="float32")
    assert one.ok and [r.dtype for r in one.rows] == ["float32"]


def test_a_disagreement_on_a_users_network_names_the_tensor():
    import bpgpu

    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(8, 4)), rng.uniform(0.1, 0.9, size=(8, 3))
    net = bpgpu.MLP([4, 5, 3], hidden="tanh", output="sigmoid", dtype="float64")
    report = compare_backends(net, X, T, backends=[Sabotaged()])
    assert not report.ok
    assert any("(network)" in f and "sabotaged float64" in f for f in report.failures())


def test_compare_backends_refuses_mixed_up_arguments():
    import bpgpu

    X, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    net = bpgpu.MLP([3, 2], dtype="float64")
    with pytest.raises(TypeError, match=r"not \[3, 2\]; e.g. compare_backends\(\['numpy'"):
        compare_backends([3, 2], backends=["numpy"])  # sizes where backends go
    with pytest.raises(TypeError, match=r"backends is a list of names .*; got 5"):
        compare_backends(backends=5)
    with pytest.raises(TypeError, match=r"backends is a list of names .*; got \[3\]"):
        compare_backends(net, X, y, backends=[3])
    with pytest.raises(TypeError, match="dtypes is a tuple of names"):
        compare_backends(["numpy"], dtypes=5)
    # one name alone, by position or by name, is a list of one (as one dtype is)
    one = [Case("one", (3, 4, 2), "tanh", "softmax", "categorical_cross_entropy", 4)]
    for report in (
        compare_backends("numpy", "float64", one),
        compare_backends(backends="numpy", dtypes="float64", suite=one),
    ):
        assert report.ok and [(r.backend, r.dtype) for r in report.rows] == [("numpy", "float64")]
    with pytest.raises(TypeError, match="its batch X and targets T"):
        compare_backends(net)
    with pytest.raises(TypeError, match="a network of yours"):
        compare_backends(["numpy"], X, y)
    with pytest.raises(TypeError, match="backends given twice, by position and by name"):
        compare_backends(["numpy"], backends=["torch"])
    with pytest.raises(TypeError, match="4 at most"):
        compare_backends(["numpy"], ("float64",), None, 0, 1)
    with pytest.raises(ValueError, match="float16"):
        compare_backends(net, X, y, dtypes=("float16",))
    with pytest.raises(ValueError, match="features"):
        compare_backends(net, np.zeros((4, 2)), y, backends=["numpy"])


def test_cli_check_compares_a_saved_model_on_its_data(tmp_path, monkeypatch, capsys):
    import bpgpu
    import bpgpu.consistency as consistency

    model = tmp_path / "m.npz"
    args = ["train", "--epochs", "1", "--hidden", "16", "--activation", "tanh", "--no-plot"]
    assert cli.main([*args, "-o", str(model)]) == 0
    capsys.readouterr()
    check = ["check", "--model", str(model), "--rows", "40"]
    assert cli.main([*check, "--backends", "numpy,array_api_strict"]) == 0
    out = capsys.readouterr().out
    assert f"{model} on 40 rows of digits" in out
    assert "| array_api_strict | float32 |" in out and "| float64 |" not in out  # its dtype
    # a backend that disagrees on this network fails the command, naming the tensor
    real = consistency.compare_backends
    monkeypatch.setattr(
        consistency,
        "compare_backends",
        lambda net, X, y, backends, dtypes, precision=None: real(
            net, X, y, backends=[Sabotaged()], dtypes=dtypes
        ),
    )
    assert cli.main([*check, "--dtype", "float64"]) == 1
    assert "FAIL sabotaged float64" in capsys.readouterr().out
    monkeypatch.setattr(consistency, "compare_backends", real)
    bpgpu.MLP([5, 4, 3]).save(tmp_path / "py.npz")  # records no data
    assert cli.main(["check", "--model", str(tmp_path / "py.npz")]) == 1
    assert "does not record the data" in capsys.readouterr().err
    assert cli.main(["check", "--data", "digits"]) == 2
    assert "are for --model FILE" in capsys.readouterr().err


def fitted_to_its_batch(hidden="tanh"):
    """A network trained until its loss on its batch is near zero: its gradients are
    small sums that cancel, the case the plain relative norm cannot judge in float32."""
    import bpgpu

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(64, 6)), rng.integers(0, 3, size=64)
    net = bpgpu.MLP([6, 32, 3], hidden=hidden, backend="numpy", dtype="float32", seed=0)
    net.fit(X, y, epochs=300, batch_size=64, optimizer="adam", lr=0.02, train_metrics=False)
    return net, X, y


def test_a_trained_network_agrees_in_float32_on_every_backend(backend):
    """A network fitted to its batch: NumPy's own float32 gradients miss the float64 ones
    by more than 1e-5 of their norm (all that float32 can do with sums that cancel), so
    ``bpgpu check --model`` failed every backend on any well-trained model. Errors are
    measured against the size of the terms such a tensor sums; still a few units of
    float32 rounding, far inside the tolerance."""
    from bpgpu.consistency import _rel

    net, X, y = fitted_to_its_batch()
    wide = net.to("numpy", dtype="float64")
    plain = max(_rel(a, b) for a, b in zip(net.gradients(X, y), wide.gradients(X, y)))
    assert plain > 1e-5  # the case in point: the relative norm alone would fail
    report = compare_backends(net, X, y, backends=[backend.name], dtypes="float32")
    assert report.ok, report.failures()
    assert max(report.rows[0].errors.values()) < 1e-6


@pytest.mark.parametrize("off,dtype", [(1e-3, "float32"), (1e-9, "float64")])
def test_a_trained_network_still_shows_a_disagreement(off, dtype):
    """Measuring against the terms' size does not hide a real fault: a tanh off by a
    part in 1e3 in float32, or 1e-9 in float64, still fails on the same converged
    network (and a fault that makes every matrix product's error that of TF32, a part
    in 2^11 of its terms, would be 50 times over the tolerance on any network)."""
    net, X, y = fitted_to_its_batch()
    report = compare_backends(net, X, y, backends=[Sabotaged(off)], dtypes=dtype)
    assert not report.ok
    assert any(f"sabotaged {dtype}" in f for f in report.failures())


def test_a_costs_size_is_that_of_its_terms():
    """A confident prediction's cost is a tiny difference of large logits; its size for
    the check is theirs. A cost of the user's own that names no terms: its value."""
    import array_api_compat.numpy as xp

    from bpgpu import activations, costs

    X, T = np.array([[30.0, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0]])
    cce, softmax = costs.get("categorical_cross_entropy"), activations.get("softmax")
    Y = softmax.f(xp, X)
    assert cce.per_sample(xp, softmax, X, Y, T)[0] < 1e-12
    assert cce.magnitude(xp, softmax, X, Y, T)[0] == pytest.approx(30 * np.sqrt(2))
    own = costs.Cost("own", fn=lambda xp, Y, T: xp.sum(abs(Y - T), axis=1), dE_dY=None)
    ident = activations.get("identity")
    Y = np.array([[0.5, -2.0]])
    assert own.magnitude(xp, ident, Y, Y, np.zeros((1, 2)))[0] == pytest.approx(2.5)
    quad = costs.get("quadratic")  # (t - y)^2 / 2: |t - y| sqrt(t^2 + y^2) per unit
    assert quad.magnitude(xp, ident, Y, Y, np.zeros((1, 2)))[0] == pytest.approx(
        np.sqrt(0.25**2 + 4**2)
    )
