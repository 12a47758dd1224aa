"""Targets as users have them: what kind they are, class labels of any kind, and the
network's classes (fit, evaluate, classify, files, copies)."""

from __future__ import annotations

import copy
import enum
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import bpgpu
from bpgpu import targets


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


@pytest.mark.parametrize(
    "y,kind",
    [
        (["cat", "dog", "cat"], "classes"),
        ([2, 0, 1], "classes"),
        (np.array([1.0, 2.0, 1.0]), "classes"),  # whole numbers read as floats
        ([True, False], "classes"),
        (np.array([[3], [4]]), "classes"),  # one column: one label per sample
        ([Colour.RED, Colour.BLUE], "classes"),  # any hashable objects
        ([1, "a"], "classes"),
        ([[1, 0], [0, 1]], "one-hot"),
        ([[1, 1], [0, 1]], "multilabel"),
        ([[0.25, 0.75], [0.5, 0.5]], "probabilities"),
        ([0.5, 1.5], "regression"),
        ([1.0, np.nan], "regression"),
        ([[1.0, 2.0], [3.0, 4.0]], "regression"),
    ],
)
def test_kind_of_each_kind_of_targets(y, kind):
    assert targets.kind(y) == kind


@pytest.mark.parametrize(
    "y,match",
    [([], r"shape \(0,\)"), (np.zeros((2, 2, 2)), "one label per sample"), ([["a", "b"]], "text")],
)
def test_kind_refuses_what_is_no_kind_of_targets(y, match):
    with pytest.raises(ValueError, match=match):
        targets.kind(y)


def test_classes_are_sorted_as_numpy_unique_sorts_them():
    assert list(targets.classes_of(["dog", "cat", "emu", "cat"])) == ["cat", "dog", "emu"]
    assert list(targets.classes_of([30, 10, 20, 10])) == [10, 20, 30]
    assert list(targets.classes_of(np.array([2.0, -1.0]))) == [-1.0, 2.0]
    with pytest.raises(TypeError, match=r"do not sort together: 1 \(int\), 'a' \(str\)"):
        targets.classes_of([1, "a"])
    with pytest.raises(ValueError, match="NaN"):
        targets.classes_of(np.array([1.0, np.nan], dtype=object))


def test_a_list_mixing_text_and_numbers_stays_as_it_is():
    """np.asarray([1, "a"]) makes the 1 into "1"; the labels keep their kinds."""
    a = targets.host_labels([1, "a"])
    assert a.dtype == object and a.tolist() == [1, "a"]


def test_encode_and_decode_are_inverse_in_the_classes_order():
    classes = targets.as_classes(["emu", "cat", "dog"])  # a user's order, not sorted
    codes = targets.encode(["dog", "emu", "cat", "dog"], classes)
    assert codes.dtype == np.int64 and codes.tolist() == [2, 0, 1, 2]
    assert targets.decode(codes, classes).tolist() == ["dog", "emu", "cat", "dog"]
    mixed = targets.as_classes([1, "a", Colour.RED])  # unorderable: looked up one by one
    assert targets.encode([Colour.RED, 1, "a"], mixed).tolist() == [2, 0, 1]
    with pytest.raises(targets.UnknownLabel, match=r"label 'yak' is not one of .*'emu', 'cat'"):
        targets.encode(["cat", "yak"], classes)


def test_plain_classes_are_the_output_indices():
    assert targets.plain(None) and targets.plain(np.arange(3))
    assert not targets.plain(np.array([1, 2, 3])) and not targets.plain(np.array(["0", "1"]))
    assert not targets.plain(np.array([1, 0]))


def test_classes_for_a_file_are_json_scalars_only():
    assert targets.to_json(np.array(["a", "b"])) == ["a", "b"]
    assert targets.to_json(np.array([1.5, 2.0])) == [1.5, 2.0]
    with pytest.raises(ValueError, match=r"class label \(1, 2\) \(tuple\)"):
        targets.to_json(targets.as_classes([(1, 2), "a"]))
    for values, match in [
        (["a"], "must list 2 labels"),
        ("ab", "must list 2 labels"),
        (["a", None], "holds None"),
        (["a", {"b": 1}], "holds"),
        ([1.0, float("nan")], "holds nan"),
        (["a", "a"], "twice"),
    ]:
        with pytest.raises(ValueError, match=match):
            targets.from_json(values, 2)


# ---- the network's classes --------------------------------------------------------------

NAMES = np.array(["cat", "dog", "emu"])


def data(n=60):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4))
    idx = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    return X, idx


def net3(backend="numpy", **kw):
    return bpgpu.MLP([4, 8, 3], backend=backend, dtype="float64", seed=1, **kw)


def test_fit_on_text_labels_equals_the_fit_on_indices_bit_for_bit(backend):
    """Text labels train on their indices in sorted order: the same weights as the
    integer fit, and the integer fit is as before (no classes, no 'classes' in files)."""
    X, idx = data()
    labels, ints = net3(backend), net3(backend)
    labels.fit(X, list(NAMES[idx]), epochs=3, lr=0.5, validation_data=(X, NAMES[idx]))
    ints.fit(X, idx, epochs=3, lr=0.5, validation_data=(X, idx))
    for a, b in zip(labels.get_weights(), ints.get_weights()):
        assert a.tobytes() == b.tobytes()
    assert list(labels.classes) == ["cat", "dog", "emu"]
    assert ints.classes is None and "classes" not in ints.config()
    assert isinstance(bpgpu.to_numpy(ints.classify(X)).dtype.type(), np.integer)


def test_classify_evaluate_loss_and_gradients_take_the_labels(backend):
    X, idx = data()
    net = net3(backend)
    net.fit(X, NAMES[idx], epochs=3, lr=0.5)
    got = net.classify(X)
    assert isinstance(got, np.ndarray) and got.dtype.kind == "U"
    want = NAMES[bpgpu.to_numpy(net.predict(X)).argmax(axis=1)]
    assert got.tolist() == want.tolist()
    rows = np.eye(3)[idx]  # one-hot rows: per output, whatever the classes
    assert net.evaluate(X, list(NAMES[idx])) == net.evaluate(X, rows)
    assert net.loss(X, NAMES[idx]) == net.loss(X, rows)
    for a, b in zip(net.gradients(X, NAMES[idx]), net.gradients(X, rows)):
        np.testing.assert_array_equal(bpgpu.to_numpy(a), bpgpu.to_numpy(b))
    for a, b in zip(net.deltas(X, NAMES[idx]), net.deltas(X, rows)):
        np.testing.assert_array_equal(bpgpu.to_numpy(a), bpgpu.to_numpy(b))


def test_labels_outside_the_classes_are_refused_naming_them():
    X, idx = data()
    net = net3()
    net.fit(X, NAMES[idx], epochs=1)
    y = NAMES[idx].astype(object)
    y[5] = "yak"
    with pytest.raises(ValueError, match=r"label 'yak' is not one of .*\('cat', 'dog', 'emu'\)"):
        net.evaluate(X, y)
    with pytest.raises(ValueError, match="label 'yak'"):
        net.fit(X, y, epochs=1)  # a second fit on another set of classes
    before = net.get_weights()
    with pytest.raises(ValueError, match="label 0 is not one of"):
        net.loss(X, idx)  # indices are not labels once the classes are text
    net.fit(X[idx < 2], NAMES[idx[idx < 2]], epochs=1)  # some of the classes: fine
    assert list(net.classes) == ["cat", "dog", "emu"]
    assert any((a != b).any() for a, b in zip(before, net.get_weights()))


def test_labels_the_network_cannot_hold_are_refused_before_training():
    X, idx = data()
    with pytest.raises(ValueError, match=r"y holds 3 classes .* network of 2 outputs"):
        bpgpu.MLP([4, 8, 2], backend="numpy").fit(X, NAMES[idx])
    with pytest.raises(TypeError, match="do not sort together"):
        net3().fit(X, [1, "a", "b"] * 20)
    with pytest.raises(ValueError, match="no classes yet"):
        net3().evaluate(X, NAMES[idx])
    with pytest.raises(ValueError, match="got 2 classes"):
        net3().classes = ["a", "b"]
    with pytest.raises(ValueError, match="twice"):
        net3().classes = ["a", "b", "a"]


def test_classes_set_by_hand_name_numeric_labels(backend):
    """Labels 10, 20, 30 (not output indices): set as the classes, they train as
    indices 0..2 would, class_weight takes them as keys, and classify answers them."""
    X, idx = data()
    named, plain = net3(backend), net3(backend)
    named.classes = [10, 20, 30]
    named.fit(X, idx * 10 + 10, epochs=2, lr=0.5, class_weight={30: 3.0})
    plain.fit(X, idx, epochs=2, lr=0.5, class_weight={2: 3.0})
    for a, b in zip(named.get_weights(), plain.get_weights()):
        assert a.tobytes() == b.tobytes()
    assert named.classify(X).tolist() == (bpgpu.to_numpy(plain.classify(X)) * 10 + 10).tolist()
    with pytest.raises(ValueError, match="class_weight names class 2"):
        named.fit(X, idx * 10 + 10, epochs=1, class_weight={2: 3.0})
    with pytest.raises(ValueError, match="read-only"):
        named.classes[0] = 99


def test_one_sigmoid_unit_tells_two_labels_apart(backend):
    X, idx = data()
    y = np.where(idx > 0, "yes", "no")
    net = bpgpu.MLP([4, 8, 1], output="sigmoid", backend=backend, dtype="float64", seed=1)
    ref = bpgpu.MLP([4, 8, 1], output="sigmoid", backend=backend, dtype="float64", seed=1)
    net.fit(X, y, epochs=3, lr=0.5)
    ref.fit(X, (idx > 0).astype(float), epochs=3, lr=0.5)
    assert list(net.classes) == ["no", "yes"]
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert a.tobytes() == b.tobytes()
    assert (
        net.classify(X).tolist()
        == np.array(["no", "yes"])[bpgpu.to_numpy(ref.classify(X)).reshape(-1)].tolist()
    )


@pytest.mark.parametrize(
    "classes", [["cat", "dog", "emu"], [10, 20, 30], [0.5, 1.5, 2.5], [1, "a", False]]
)
def test_model_files_keep_the_classes_and_classify_answers_them(classes, tmp_path, backend):
    X, idx = data()
    net = net3(backend)
    net.classes = classes
    net.fit(X, np.array(classes, dtype=object)[idx], epochs=1)
    net.save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        assert json.loads(z.read("config.json"))["classes"] == classes
    back = bpgpu.load(tmp_path / "m.npz", backend=backend)
    assert back.classes.tolist() == classes
    assert [type(c) for c in back.classes.tolist()] == [type(c) for c in classes]
    assert back.classify(X).tolist() == net.classify(X).tolist()


def test_copies_pickles_and_other_backends_keep_the_classes():
    X, idx = data()
    net = net3()
    net.classes = [(1, 2), "a", None]  # any hashable labels: a pickle holds them
    for other in (copy.copy(net), copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert other.classes.tolist() == [(1, 2), "a", None]
        assert other.classify(X).tolist() == net.classify(X).tolist()
    assert net.to("array_api_strict").classify(X).tolist() == net.classify(X).tolist()


def test_labels_a_file_cannot_hold_are_refused_before_anything_is_written(tmp_path):
    X, idx = data()
    net = net3()
    net.classes = [(1, 2), "a", "b"]
    with pytest.raises(ValueError, match=r"class label \(1, 2\) \(tuple\)"):
        net.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"a checkpoint .* class label \(1, 2\)"):
        net.fit(X, ["a", "b"] * 30, epochs=1, checkpoint=tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def test_a_checkpoint_resumes_with_its_classes_and_refuses_others(tmp_path):
    """Text labels resume exactly (the classes found again from the same labels); a
    network whose outputs stand for other classes is another network."""
    X, idx = data()
    y = NAMES[idx]
    whole = net3()
    whole.fit(X, y, epochs=4, lr=0.5)
    part = net3()
    part.fit(X, y, epochs=2, lr=0.5, checkpoint=tmp_path / "c.npz")
    again = net3()
    again.fit(X, y, epochs=4, lr=0.5, resume=tmp_path / "c.npz")
    for a, b in zip(whole.get_weights(), again.get_weights()):
        assert a.tobytes() == b.tobytes()
    other = net3()
    other.classes = ["emu", "dog", "cat"]
    with pytest.raises(ValueError, match=r"holds a different network .*'cat', 'dog', 'emu'"):
        other.fit(X, y, epochs=4, resume=tmp_path / "c.npz")
