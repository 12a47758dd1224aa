"""A model that leaves bpgpu: ONNX (checked by onnx, run by ONNX Runtime), torch
(``to_torch``, ``from_torch``, a ``torch.export`` program) and scikit-learn
(``from_sklearn``), each proven by the other side's own runtime."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

import bpgpu
from bpgpu.activations import ACTIVATIONS
from bpgpu.cli import main

HIDDEN = [a.name for a in ACTIVATIONS.values() if a.hidden_ok]
OUTPUTS = ["softmax", "sigmoid", "identity"]
pytestmark = pytest.mark.filterwarnings("ignore:binary_step")


def _net(hidden="relu", output="softmax", dtype="float32", scaled=True, sizes=(5, 7, 4, 3)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # binary step's zero-gradient warning
        cost = None if output in ("softmax", "sigmoid") else "quadratic"
        net = bpgpu.MLP(list(sizes), hidden, output, cost, "numpy", dtype, seed=3)
    rng = np.random.default_rng(0)
    net.set_weights([w + rng.normal(size=w.shape) * 0.3 for w in net.get_weights()])
    if scaled:
        net.set_input_scaling(rng.normal(size=sizes[0]), rng.uniform(0.5, 2, size=sizes[0]))
    return net


def _X(n=9, d=5, scale=3.0):
    return np.random.default_rng(1).normal(size=(n, d)) * scale


def _tol(dtype):
    return {"float32": 1e-5, "float64": 1e-12}[dtype]


# ---- ONNX ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def _run_onnx(ort, path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_onnx_runtime_gives_predict_for_every_activation_and_output(
    tmp_path, ort, hidden, output, dtype
):
    import onnx

    net = _net(hidden, output, dtype)
    path = tmp_path / "m.onnx"
    net.export(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    for n in (1, 9):  # the batch dimension is dynamic
        X = _X(n, scale=4.0).astype(dtype)
        got = _run_onnx(ort, path, X)
        assert got.dtype == np.dtype(dtype) and got.shape == (n, 3)
        np.testing.assert_allclose(got, np.asarray(net.predict(X)), rtol=0, atol=_tol(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", ["arctan", "elu", "softplus", "sigmoid", "tanh"])
def test_onnx_stays_finite_and_equal_far_from_zero(tmp_path, ort, hidden, dtype):
    """Weighted inputs in the thousands (the stable forms' range), and arctan's float64
    form far out, where its Newton step from float32 meets large x."""
    net = _net(hidden, "identity", dtype, scaled=False)
    net.export(tmp_path / "m.onnx")
    X = _X(20, scale=1000.0).astype(dtype)
    got, want = _run_onnx(ort, tmp_path / "m.onnx", X), np.asarray(net.predict(X))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=_tol(dtype), atol=_tol(dtype) * abs(want).max())


def test_onnx_metadata_holds_the_config_and_classes(tmp_path, ort):
    import json

    import onnx

    net = _net()
    net.classes = ["cat", "dog", "emu"]
    net.export(tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    cfg = json.loads(props["bpgpu"])
    assert cfg["classes"] == ["cat", "dog", "emu"] and cfg["sizes"] == [5, 7, 4, 3]
    assert model.opset_import[0].version == 17
    assert [i.name for i in model.graph.input] == ["input"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_an_activation_of_your_own_is_refused_by_name_and_nothing_written(tmp_path, ort):
    import dataclasses

    own = dataclasses.replace(ACTIVATIONS["tanh"], name="my_tanh", f=lambda xp, X, a=None: X)
    net = bpgpu.MLP([4, 6, 2], own, "softmax", backend="numpy")
    for suffix in (".onnx", ".pt2"):
        with pytest.raises(ValueError, match="'my_tanh' is your own"):
            net.export(tmp_path / f"m{suffix}")
    assert not os.listdir(tmp_path)


def test_export_without_onnx_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"bpgpu\[onnx\]"):
        _net().export(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_export_refuses_an_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.onnx, \.pt2"):
        _net().export(tmp_path / "m.tflite")


# ---- torch -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_to_torch_outputs_equal_predict(torch, hidden, dtype):
    net = _net(hidden, "softmax", dtype)
    seq = net.to_torch()
    assert isinstance(seq, torch.nn.Sequential) and not seq.training
    with torch.no_grad():
        got = seq(torch.from_numpy(_X().astype(dtype))).numpy()
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, np.asarray(net.predict(_X())), rtol=0, atol=_tol(dtype))


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_from_torch_of_to_torch_is_the_same_network(torch, hidden, output):
    net = _net(hidden, output, "float64")
    back = bpgpu.from_torch(net.to_torch(), cost=net.cost.name)
    assert back.sizes == net.sizes and back.dtype == "float64"
    assert [a.name for a in back.activations] == [a.name for a in net.activations]
    for a, b in zip(back.get_weights(), net.get_weights()):
        assert np.array_equal(a, b)
    assert all(np.array_equal(a, b) for a, b in zip(back.input_scaling, net.input_scaling))


def test_from_torch_reads_a_hand_built_sequential(torch):
    nn = torch.nn
    torch.manual_seed(0)
    seq = nn.Sequential(
        nn.Sequential(nn.Linear(4, 6, bias=False), nn.PReLU()),  # nested; one shared slope
        nn.Linear(6, 5),
        nn.Softplus(),
        nn.Linear(5, 3),  # no activation: identity
        nn.Linear(3, 2),
        nn.Softmax(dim=1),
    )
    net = bpgpu.from_torch(seq, backend="numpy")
    assert net.sizes == [4, 6, 5, 3, 2]
    assert [a.name for a in net.activations] == ["prelu", "softplus", "identity", "softmax"]
    X = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    with torch.no_grad():
        want = seq(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(np.asarray(net.predict(X)), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2)), r"module 1 \(GELU"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2)), r"module 1 \(LeakyReLU"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.ELU(alpha=2.0)), r"module 1 \(ELU"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.ReLU()), "Linear layer is due"),
        (lambda nn: nn.Sequential(nn.ReLU(), nn.Linear(3, 4)), r"module 0 \(ReLU"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Softmax(-1), nn.Linear(4, 2)), "output"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Dropout(), nn.Linear(4, 2)), "Dropout"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), "takes 5 inputs"),
        (lambda nn: nn.Sequential(), "no Linear layer"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4).half()), "float16"),
    ],
)
def test_from_torch_names_the_first_module_it_cannot_take(torch, build, match):
    with pytest.raises(ValueError, match=match):
        bpgpu.from_torch(build(torch.nn))


@pytest.mark.parametrize("suffix", [".pt2", ".pt"])
def test_a_torch_export_program_runs_without_bpgpu(tmp_path, torch, suffix):
    import subprocess

    net = _net("arctan", "softmax")
    path = tmp_path / f"m{suffix}"
    net.export(path)
    X = _X(4).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    code = (
        "import sys, numpy as np, torch\n"
        "assert 'bpgpu' not in sys.modules\n"
        f"m = torch.export.load({str(path)!r}).module()\n"
        f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, m(x).detach().numpy())\n"
    )
    # a fresh interpreter started outside the checkout, so bpgpu cannot be imported
    env = {**os.environ, "PYTHONPATH": ""}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)
    got = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(got, np.asarray(net.predict(X)), rtol=0, atol=1e-6)


# ---- scikit-learn ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _fitted(kind, X, y, **kw):
    from sklearn import neural_network

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        return getattr(neural_network, kind)(
            hidden_layer_sizes=(16, 8), max_iter=20, random_state=0, **kw
        ).fit(X, y)


def _targets(digits, task):
    X, y = digits
    return {
        "multiclass": y,
        "binary": np.where(y % 2 == 0, "even", "odd"),
        "multilabel": np.stack([y % 2, y < 5], axis=1).astype(int),
    }[task]


@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh", "identity"])
@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_from_sklearn_classifier_gives_its_predictions(digits, task, activation):
    X, y = digits[0], _targets(digits, task)
    mlp = _fitted("MLPClassifier", X, y, activation=activation)
    net = bpgpu.from_sklearn(mlp, backend="numpy")
    proba = mlp.predict_proba(X)
    if task == "binary":
        proba = proba[:, 1:]  # one logistic unit: the positive class
    np.testing.assert_allclose(np.asarray(net.predict(X)), proba, rtol=0, atol=1e-12)
    labels = bpgpu.to_numpy(net.classify(X, multilabel=task == "multilabel"))
    assert np.array_equal(labels, mlp.predict(X))


def test_from_sklearn_regressor_gives_its_predictions(digits):
    X, y = digits
    Y = np.stack([y, y**2], axis=1).astype(float)
    for target in (y.astype(float), Y):
        mlp = _fitted("MLPRegressor", X, target)
        net = bpgpu.from_sklearn(mlp, dtype="float64")
        got = np.asarray(net.predict(X))
        np.testing.assert_allclose(got.reshape(mlp.predict(X).shape), mlp.predict(X), atol=1e-10)
        assert net.cost.name == "quadratic"


def test_from_sklearn_refuses_what_it_cannot_take(digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    X, y = digits
    with pytest.raises(TypeError, match="MLPClassifier or MLPRegressor"):
        bpgpu.from_sklearn(LogisticRegression())
    with pytest.raises(ValueError, match="not fitted"):
        bpgpu.from_sklearn(MLPClassifier())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        poisson = _fitted("MLPRegressor", X, y + 1.0, loss="poisson")
    with pytest.raises(ValueError, match="'exp'"):
        bpgpu.from_sklearn(poisson)


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_bpclassifier_starts_from_a_fitted_mlpclassifier_and_trains_on(digits, task):
    from bpgpu.sklearn import BPClassifier

    X, y = digits[0], _targets(digits, task)
    mlp = _fitted("MLPClassifier", X, y)
    est = BPClassifier.from_sklearn(mlp, backend="numpy", max_iter=5)
    assert est.hidden_layer_sizes == (16, 8) and est.warm_start and est.max_iter == 5
    np.testing.assert_allclose(est.predict_proba(X), mlp.predict_proba(X), rtol=0, atol=1e-12)
    assert np.array_equal(est.predict(X), mlp.predict(X))
    assert np.array_equal(est.classes_, mlp.classes_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    curve = est.loss_curve_
    assert curve[:20] == list(mlp.loss_curve_) and len(curve) == 25
    # trained on from where scikit-learn stopped: the loss goes on, not from scratch
    assert curve[20] < 1.1 * mlp.loss_curve_[-1] and curve[-1] < mlp.loss_curve_[-1]


def test_bpregressor_from_sklearn_and_the_wrong_kind(digits):
    from bpgpu.sklearn import BPClassifier, BPRegressor

    X, y = digits
    mlp = _fitted("MLPRegressor", X, y.astype(float))
    est = BPRegressor.from_sklearn(mlp, max_iter=3)
    np.testing.assert_allclose(est.predict(X), mlp.predict(X), atol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y.astype(float))
    assert est.loss_curve_[-1] < mlp.loss_curve_[-1]
    with pytest.raises(TypeError, match="takes a fitted MLPClassifier"):
        BPClassifier.from_sklearn(mlp)


# ---- the command line ------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    net = _net("tanh", "softmax")
    net.classes = ["a", "b", "c"]
    net.save(tmp_path / "m.npz")
    return net, tmp_path


def test_cli_export_writes_each_format_that_its_runtime_reads(saved, capsys):
    net, d = saved
    X = _X().astype(np.float32)
    want = np.asarray(net.predict(X))
    assert main(["export", str(d / "m.npz"), str(d / "out" / "m.safetensors")]) == 0
    assert np.array_equal(
        bpgpu.load(d / "out" / "m.safetensors").get_weights()[0], net.get_weights()[0]
    )
    assert main(["export", str(d / "out" / "m.safetensors"), str(d / "again.npz")]) == 0
    assert list(bpgpu.load(d / "again.npz").classes) == ["a", "b", "c"]
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    assert main(["export", str(d / "m.npz"), str(d / "m.onnx")]) == 0
    assert "m.onnx written" in capsys.readouterr().out
    np.testing.assert_allclose(_run_onnx(ort, d / "m.onnx", X), want, atol=1e-5)


@pytest.mark.parametrize(
    ("out", "match"),
    [("m.tflite", "must end in"), ("m.npz", "the model file itself")],
)
def test_cli_export_refuses_with_one_line_and_writes_nothing(saved, capsys, out, match):
    _, d = saved
    before = sorted(os.listdir(d))
    assert main(["export", str(d / "m.npz"), str(d / out)]) == 1
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and err.startswith("bpgpu export: error:")
    assert sorted(os.listdir(d)) == before


def test_cli_export_of_a_missing_or_bad_model_is_one_line(saved, capsys):
    _, d = saved
    assert main(["export", str(d / "nope.npz"), str(d / "m.onnx")]) == 1
    assert "no such model file" in capsys.readouterr().err
    (d / "bad.safetensors").write_bytes(b"\x10" + b"\0" * 7 + b"{}" + b" " * 14)
    assert main(["export", str(d / "bad.safetensors"), str(d / "m.onnx")]) == 1
    assert "without bpgpu's config" in capsys.readouterr().err


def test_cli_export_without_onnx_says_how_to_install_it(saved, capsys, monkeypatch):
    _, d = saved
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(d / "m.npz"), str(d / "m.onnx")]) == 1
    assert "pip install 'bpgpu[onnx]'" in capsys.readouterr().err
    assert not (d / "m.onnx").exists()


def test_cli_trains_into_safetensors_and_evaluates_and_predicts_from_it(tmp_path, capsys):
    """A .safetensors model file is a model file everywhere: train -o, evaluate, predict."""
    d = tmp_path
    args = ["--epochs", "2", "--no-plot", "--backend", "numpy"]
    assert main(["train", *args, "-o", str(d / "m.safetensors")]) == 0
    assert not (d / "m.ckpt.npz").exists()  # the run's checkpoint went with its end
    capsys.readouterr()
    assert main(["evaluate", str(d / "m.safetensors"), "--subset", "test"]) == 0
    assert "359 samples" in capsys.readouterr().out
    X, _ = bpgpu.datasets.load_digits()
    np.save(d / "x.npy", X[:5])
    assert main(["predict", str(d / "m.safetensors"), str(d / "x.npy")]) == 0
    assert capsys.readouterr().out.count("\n") == 6  # a header and five labels


def test_cli_train_refuses_an_export_suffix_before_training(tmp_path, capsys):
    rc = main(["train", "--epochs", "50", "--no-plot", "-o", str(tmp_path / "m.onnx")])
    out, err = capsys.readouterr()
    assert rc == 1 and "bpgpu export MODEL OUT.onnx" in err and "epoch" not in out
    assert not os.listdir(tmp_path)
