"""Inputs far from unit scale: said once with the fix; ``fit(standardize=True)`` sets the
input scaling from the training rows, saved with the model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bpgpu
from bpgpu import input_scale


def _data(scale=1000.0, n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, 5)) + y[:, None]
    X[:, 3] = X[:, 3] * scale + scale  # one feature in the thousands, as an area is
    return X, y


def _net(backend="numpy"):
    return bpgpu.MLP([5, 8, 2], backend=backend, seed=0)


def test_inputs_far_from_unit_scale_are_said_once_with_the_fix():
    X, y = _data()
    with pytest.warns(UserWarning, match=r"feature 3 .*standardize=True") as seen:
        _net().fit(X, y, epochs=2, lr=1e-5)
    assert len([w for w in seen if "unit scale" in str(w.message)]) == 1
    assert seen[0].filename == __file__  # the user's line, not bpgpu's


@pytest.mark.parametrize("case", ["unit", "digits", "scaled net", "standardize"])
def test_no_word_where_the_scale_is_fine(case):
    X, y = _data(scale=1.0) if case == "unit" else _data()
    net = _net()
    kw = {}
    if case == "digits":
        X, y = bpgpu.datasets.load_digits()  # 0..16: fine as it is
        net = bpgpu.MLP([64, 8, 10], backend="numpy")
    elif case == "scaled net":
        net.set_input_scaling(*bpgpu.datasets.standardize(X))
    elif case == "standardize":
        kw["standardize"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.fit(X, y, epochs=1, **kw)


def test_the_threshold_is_what_it_says():
    X, y = _data(scale=1.0)
    X[:, 0] = input_scale.LARGE * 0.99  # just inside
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _net().fit(X, y, epochs=1, lr=1e-4)
    X[:, 0] = input_scale.LARGE * 1.01  # just past
    with pytest.warns(UserWarning, match="feature 0"):
        _net().fit(X, y, epochs=1, lr=1e-4)


def test_standardize_scales_on_the_training_rows_and_is_saved(tmp_path):
    X, y = _data()
    net = _net()
    h = net.fit(X, y, epochs=3, standardize=True, validation_split=0.25, seed=1)
    keep = bpgpu.host_rng.split_indices(len(X), 0.25, 1)[0]
    mean, scale = net.input_scaling
    np.testing.assert_allclose(mean, X[keep].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(scale, X[keep].std(axis=0), rtol=1e-6)
    assert h.loss[0] < 2  # not the thousands the raw inputs start at
    net.save(tmp_path / "m.npz")
    back = bpgpu.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.predict(X), net.predict(X))  # raw inputs in


def test_standardize_reads_a_memory_map_and_a_device_array(tmp_path):
    X, y = _data()
    np.save(tmp_path / "X.npy", X)
    net = _net()
    net.fit(str(tmp_path / "X.npy"), y, epochs=1, standardize=True)
    np.testing.assert_allclose(net.input_scaling[0], X.mean(axis=0), rtol=1e-6)
    torch = pytest.importorskip("torch")
    net = _net("torch")
    net.fit(torch.tensor(X), y, epochs=1, standardize=True)
    np.testing.assert_allclose(net.input_scaling[1], X.std(axis=0), rtol=1e-5)


def test_standardize_is_refused_where_it_cannot_apply_and_changes_nothing(tmp_path):
    X, y = _data()
    net = _net()
    before = net.get_weights()
    with pytest.raises(ValueError, match="True or False"):
        net.fit(X, y, epochs=1, standardize="yes")
    net.fit(X, y, epochs=1, checkpoint=tmp_path / "c.npz", standardize=True)
    with pytest.raises(ValueError, match="the checkpoint has its input scaling"):
        _net().fit(X, y, epochs=2, resume=tmp_path / "c.npz", standardize=True)
    with pytest.raises(ValueError, match="would replace the network's input scaling"):
        net.fit(X, y, epochs=1, standardize=True)
    fresh = _net()
    with pytest.raises(ValueError):  # refused later (targets): the scaling is put back
        fresh.fit(X, y[:-1], epochs=1, standardize=True)
    assert fresh.input_scaling is None
    assert all(np.array_equal(a, b) for a, b in zip(_net().get_weights(), before))
