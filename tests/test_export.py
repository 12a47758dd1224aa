"""A model that leaves bpgpu: ONNX (checked by onnx, run by ONNX Runtime), torch
(``to_torch``, ``from_torch``, a ``torch.export`` program) and scikit-learn
(``from_sklearn``), each proven by the other side's own runtime."""

from __future__ import annotations

import os
import re
import sys
import warnings

import numpy as np
import pytest
from conftest import perturbed_net

import bpgpu
from bpgpu.activations import ACTIVATIONS
from bpgpu.cli import main

HIDDEN = [a.name for a in ACTIVATIONS.values() if a.hidden_ok]
OUTPUTS = ["softmax", "sigmoid", "identity"]
pytestmark = pytest.mark.filterwarnings("ignore:binary_step")


def _net(hidden="relu", output="softmax", dtype="float32", scaled=True, sizes=(5, 7, 4, 3)):
    return perturbed_net(hidden, output, dtype, scaled, sizes, noise=0.3)


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
    from bpgpu.backends._install import install_hint

    with pytest.raises(ImportError) as e:
        _net().export(tmp_path / "new" / "m.onnx")
    assert install_hint("onnx") in str(e.value)
    assert not os.listdir(tmp_path)  # not even the folder


def test_export_refuses_an_unknown_suffix(tmp_path):
    for name in ("m.tflite", "new/m.pth"):
        with pytest.raises(ValueError, match=r"\.onnx, \.pt2"):
            _net().export(tmp_path / name)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("suffix", [".onnx", ".pt2", ".pt"])
def test_loading_an_export_says_it_is_one(tmp_path, suffix):
    pytest.importorskip("onnx" if suffix == ".onnx" else "torch")
    _net().export(tmp_path / f"m{suffix}")
    with pytest.raises(bpgpu.ModelFileError, match=f"a {suffix} file is an export"):
        bpgpu.load(tmp_path / f"m{suffix}")


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
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2)), "negative_slope=0.2"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.ELU(alpha=2.0)), r"ELU\(alpha=2.0\)"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Softplus(beta=2)), "beta=2"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=0)), "dim=0"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.PReLU(3)), "3 slopes"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.ReLU()), "one activation per"),
        (lambda nn: nn.Sequential(nn.ReLU(), nn.Linear(3, 4)), "starts with a Linear"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Softmax(-1), nn.Linear(4, 2)), "output"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), "BatchNorm1d"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), "takes 5 inputs"),
        (lambda nn: nn.Sequential(), "no Linear layer"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4).half()), "float16"),
    ],
)
def test_from_torch_names_the_first_module_it_cannot_take(torch, build, match):
    with pytest.raises(ValueError, match=match) as e:
        bpgpu.from_torch(build(torch.nn))
    assert "\n" not in str(e.value)


def test_from_torch_refuses_what_is_not_a_sequential_in_one_line(torch, tmp_path):
    nn = torch.nn
    _net().export(tmp_path / "m.pt2")
    graph = torch.export.load(str(tmp_path / "m.pt2")).module()
    for bad in (None, "model.pt", nn.ModuleList([nn.Linear(2, 2)]), graph):
        with pytest.raises(TypeError, match="takes a torch.nn.Sequential") as e:
            bpgpu.from_torch(bad)
        assert "\n" not in str(e.value)


def test_from_torch_leaves_out_identity_and_dropout_which_pass_inputs_through(torch):
    nn = torch.nn
    seq = nn.Sequential(nn.Linear(3, 4), nn.Identity(), nn.ReLU(), nn.Dropout(0.5))
    seq.append(nn.Linear(4, 2)).eval()
    with pytest.warns(UserWarning, match="Dropout is left out"):
        net = bpgpu.from_torch(seq)
    assert [a.name for a in net.activations] == ["relu", "identity"]
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    with torch.no_grad():
        want = seq(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(np.asarray(net.predict(X)), want, atol=1e-6)


def test_from_torch_output_puts_the_probabilities_after_raw_scores(torch):
    nn = torch.nn
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4))  # CrossEntropyLoss's
    net = bpgpu.from_torch(seq, output="softmax")
    assert net.activations[-1].name == "softmax" and net.cost.name == "categorical_cross_entropy"
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    with torch.no_grad():
        want = torch.softmax(seq(torch.from_numpy(X)), dim=-1).numpy()
    np.testing.assert_allclose(np.asarray(net.predict(X)), want, atol=1e-6)
    with pytest.raises(ValueError, match="output activation already"):
        bpgpu.from_torch(nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()), output="softmax")


def test_a_torch_export_program_runs_without_bpgpu(tmp_path, torch):
    net = _net("arctan", "softmax")
    net.export(tmp_path / "m.pt2")
    X = _X(4).astype(np.float32)
    code = "m = torch.export.load(PATH).module()\ny = m(torch.from_numpy(X)).detach().numpy()\n"
    got = _without_bpgpu(tmp_path, code, tmp_path / "m.pt2", X)
    np.testing.assert_allclose(got, np.asarray(net.predict(X)), rtol=0, atol=1e-6)


def test_a_pt_file_is_the_state_dict_torch_load_reads(tmp_path, torch):
    net = _net("prelu", "sigmoid")
    net.export(tmp_path / "m.pt")
    X = _X(4).astype(np.float32)
    state = torch.load(str(tmp_path / "m.pt"))  # weights only, torch's default
    assert list(state) == list(net.to_torch().state_dict())
    seq = _net("prelu", "sigmoid").to_torch()
    seq.load_state_dict(state)
    code = "s = torch.load(PATH)\ny = s['1.weight'].numpy()\n"
    got = _without_bpgpu(tmp_path, code, tmp_path / "m.pt", X)
    assert np.array_equal(got, net.get_weights()[0])


def _without_bpgpu(folder, code, path, X):
    """``code`` run in a fresh interpreter that has not imported bpgpu, with ``PATH``,
    ``X`` and torch; returns its ``y``."""
    import subprocess

    np.save(folder / "x.npy", X)
    prelude = (
        "import sys, numpy as np, torch\n"
        f"PATH = {str(path)!r}\nX = np.load({str(folder / 'x.npy')!r})\n"
    )
    tail = f"assert 'bpgpu' not in sys.modules\nnp.save({str(folder / 'y.npy')!r}, y)\n"
    env = {**os.environ, "PYTHONPATH": ""}
    subprocess.run([sys.executable, "-c", prelude + code + tail], check=True, cwd=folder, env=env)
    return np.load(folder / "y.npy")


def test_export_without_torch_says_how_to_install_it_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "bpgpu.torch_modules", raising=False)  # as if never
    monkeypatch.delattr(bpgpu, "torch_modules", raising=False)  # imported, torch absent
    monkeypatch.setitem(sys.modules, "torch", None)
    from bpgpu.backends._install import install_hint

    hint = re.escape(install_hint("torch"))
    for suffix in (".pt2", ".pt"):
        with pytest.raises(ImportError, match=hint):
            _net().export(tmp_path / "new" / f"m{suffix}")
    with pytest.raises(ImportError, match=hint):
        _net().to_torch()
    assert not os.listdir(tmp_path)  # not even the folder


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
    with pytest.raises(ValueError, match="loss='poisson'"):
        bpgpu.from_sklearn(poisson)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), _fitted("MLPClassifier", X, y))
    with pytest.raises(TypeError, match=r"from_sklearn\(pipe\[-1\]\).*set_input_scaling"):
        bpgpu.from_sklearn(pipe)


def test_a_pipelines_scaler_goes_in_as_the_input_scaling_as_the_message_says(digits):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = digits
    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(StandardScaler(), mlp).fit(X, y)
    net = bpgpu.from_sklearn(pipe[-1])
    scaler = pipe[0]
    net.set_input_scaling(scaler.mean_, scaler.scale_)
    np.testing.assert_allclose(np.asarray(net.predict(X)), pipe.predict_proba(X), atol=1e-12)


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


def test_from_sklearn_copies_and_never_changes_the_scikit_learn_model(digits):
    from bpgpu.sklearn import BPClassifier

    X, y = digits
    mlp = _fitted("MLPClassifier", X, y, early_stopping=True)
    scores, curve = list(mlp.validation_scores_), list(mlp.loss_curve_)
    coefs = [c.copy() for c in mlp.coefs_]
    est = BPClassifier.from_sklearn(mlp, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert len(est.validation_scores_) == len(scores) + 3
    assert mlp.validation_scores_ == scores and mlp.loss_curve_ == curve
    assert all(np.array_equal(a, b) for a, b in zip(mlp.coefs_, coefs))


def test_from_sklearn_names_a_misspelt_parameter(digits):
    from bpgpu.sklearn import BPClassifier

    mlp = _fitted("MLPClassifier", *digits)
    with pytest.raises(TypeError, match="BPClassifier.from_sklearn.*'max_itr'.*'max_iter'"):
        BPClassifier.from_sklearn(mlp, max_itr=3)


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
    from bpgpu.backends._install import install_hint

    assert install_hint("onnx") in capsys.readouterr().err
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


@pytest.mark.parametrize(
    ("option", "match"),
    [
        (["-o", "m.onnx"], "bpgpu export MODEL OUT.onnx"),
        (["-o", "m.pth"], ".pt2 (a program) or .pt"),
        (["--checkpoint", "c.safetensors"], "a checkpoint is an .npz archive"),
        (["--checkpoint", "c.onnx"], "a checkpoint is an .npz archive"),
    ],
)
def test_cli_train_refuses_a_file_of_another_format_before_training(
    tmp_path, capsys, option, match
):
    option = [option[0], str(tmp_path / option[1])]
    rc = main(["train", "--epochs", "50", "--no-plot", "-o", str(tmp_path / "m.npz"), *option])
    out, err = capsys.readouterr()
    assert rc == 1 and match in err and "epoch" not in out
    assert not os.listdir(tmp_path)


def test_fit_refuses_a_checkpoint_named_as_another_format(tmp_path):
    net = _net()
    before = net.get_weights()
    X, y = _X(20), np.arange(20) % 3
    with pytest.raises(ValueError, match="a checkpoint is an .npz archive"):
        net.fit(X, y, epochs=1, checkpoint=tmp_path / "c.safetensors")
    assert all(np.array_equal(a, b) for a, b in zip(net.get_weights(), before))
    assert not os.listdir(tmp_path)


def test_resuming_a_safetensors_model_file_says_it_is_no_checkpoint(tmp_path):
    net = _net()
    net.save(tmp_path / "m.safetensors")
    with pytest.raises(bpgpu.ModelFileError, match="a .safetensors model file, not a checkpoint"):
        net.fit(_X(20), np.arange(20) % 3, epochs=2, resume=tmp_path / "m.safetensors")
