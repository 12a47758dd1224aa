"""Model files: exact round trips, atomic writes, and refusal of anything not ours."""

from __future__ import annotations

import io as _io
import json
import os
import zipfile

import numpy as np
import pytest

import bpgpu
from bpgpu import io


def make(backend="numpy", dtype="float32"):
    net = bpgpu.MLP([5, 7, 4, 3], hidden=["prelu", "tanh"], backend=backend, dtype=dtype, seed=4)
    net.set_input_scaling(np.arange(5.0), np.full(5, 2.0))
    return net


def test_round_trip_is_exact_on_every_backend(tmp_path, backend):
    net = make(backend, "float64")
    net.save(tmp_path / "m.npz")
    back = bpgpu.load(tmp_path / "m.npz", backend=backend)
    assert back.backend is backend and back.dtype == "float64"
    assert [a.name for a in back.activations] == ["prelu", "tanh", "softmax"]
    for a, b in zip(net.get_weights(), back.get_weights()):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    X = np.random.default_rng(0).normal(size=(4, 5))
    np.testing.assert_array_equal(bpgpu.to_numpy(back.forward(X)), bpgpu.to_numpy(net.forward(X)))


def test_file_is_a_zip_of_npy_members_and_json_config(tmp_path):
    make().save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as zf:
        names = set(zf.namelist())
        cfg = json.loads(zf.read("config.json"))
    assert names == {
        "config.json",
        "W1.npy",
        "b1.npy",
        "a1.npy",
        "W2.npy",
        "b2.npy",
        "W3.npy",
        "b3.npy",
        "x_mean.npy",
        "x_scale.npy",
    }
    assert cfg["format"] == "bpgpu-model" and cfg["format_version"] == 1
    assert cfg["sizes"] == [5, 7, 4, 3] and cfg["dtype"] == "float32"
    assert cfg["bpgpu_version"] == bpgpu.__version__
    with np.load(tmp_path / "m.npz", allow_pickle=False) as d:  # plain NumPy reads it too
        assert d["W1"].shape == (7, 5)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "m.npz"
    make().save(path)
    before = path.read_bytes()

    def broken(f):
        f.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io.atomic_write(path, broken)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_saving_non_finite_weights_is_refused(tmp_path):
    net = make()
    net.model.params[0] = net.model.params[0] * np.float32("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        net.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def rewrite(src, dst, *, drop=(), add=None, replace=None, config=None):
    """Copy a model archive, dropping, adding or replacing members, or editing the config."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in drop:
                continue
            data = zin.read(name)
            if name == "config.json" and config:
                cfg = json.loads(data)
                config(cfg)
                data = json.dumps(cfg).encode()
            if replace and name in replace:
                data = replace[name]
            zout.writestr(name, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)


def npy(a, allow_pickle=False):
    buf = _io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/bpgpu-pwned",))


@pytest.mark.parametrize(
    "change,match",
    [
        ({"drop": ["config.json"]}, "missing config.json"),
        ({"drop": ["b2.npy"]}, "missing: b2.npy"),
        ({"add": {"extra.npy": npy(np.zeros(2, np.float32))}}, "unexpected: extra.npy"),
        ({"replace": {"W1.npy": npy(np.zeros((7, 6), np.float32))}}, r"shape \(7, 6\)"),
        ({"replace": {"W1.npy": npy(np.zeros((7, 5), np.float64))}}, "dtype float64"),
        ({"replace": {"b1.npy": npy(np.full(7, np.inf, np.float32))}}, "NaN or inf"),
        ({"replace": {"b1.npy": npy(np.zeros(7, np.float32))[:-8]}}, "data bytes"),
        ({"replace": {"b1.npy": npy(np.array([Payload()] * 7, dtype=object), True)}}, "dtype"),
        ({"replace": {"config.json": b"{not json"}}, "not valid JSON"),
        ({"config": lambda c: c.update(format_version=99)}, "version 99"),
        ({"config": lambda c: c.update(format="pickle")}, "not a bpgpu model"),
        ({"config": lambda c: c["activations"].__setitem__(0, "evil")}, "unknown activation"),
        ({"config": lambda c: c.update(sizes=[5, -7, 4, 3])}, "positive layer widths"),
        ({"config": lambda c: c.update(sizes=[5, 7, 4])}, "one activation per layer"),
        ({"config": lambda c: c.update(cost="nope")}, "unknown cost"),
        ({"config": lambda c: c.update(cost=7)}, "'cost' 7 must be a name"),
        ({"config": lambda c: c["activations"].__setitem__(0, 3)}, "must be names"),
        ({"config": lambda c: c.update(custom=["swish"])}, "'custom' must list names of its"),
        ({"config": lambda c: c.update(custom="relu")}, "'custom' must list names of its"),
        ({"config": lambda c: c.update(custom=["tanh"])}, "activation 'tanh' is an object of"),
        ({"config": lambda c: c.update(dtype="float16")}, "dtype"),
        ({"config": lambda c: c.update(sizes=[5, 16_000_000, 16_000_000, 3])}, "max_bytes"),
        # classes: one per output, each a JSON text, number or boolean, each once
        ({"config": lambda c: c.update(classes=["a", "b"])}, "'classes' must list 3 labels"),
        ({"config": lambda c: c.update(classes="abc")}, "'classes' must list 3 labels"),
        ({"config": lambda c: c.update(classes=["a", "b", None])}, "'classes' holds None"),
        ({"config": lambda c: c.update(classes=["a", "b", ["c"]])}, r"'classes' holds \['c'\]"),
        ({"config": lambda c: c.update(classes=["a", "b", "a"])}, "'a' twice"),
        (
            {
                "config": lambda c: c.update(
                    activations=["prelu", "tanh", "relu"], cost="categorical_cross_entropy"
                )
            },
            "not valid",
        ),
    ],
)
def test_bad_files_are_refused(tmp_path, change, match):
    good = tmp_path / "good.npz"
    make().save(good)
    bad = tmp_path / "bad.npz"
    rewrite(good, bad, **change)
    with pytest.raises(bpgpu.ModelFileError, match=match):
        bpgpu.load(bad)
    assert not os.path.exists("/tmp/bpgpu-pwned")


def test_classes_recorded_by_the_command_line_in_older_files_are_the_networks(tmp_path):
    """A file from before the config held ``classes``: those ``bpgpu train`` recorded
    in its ``data`` section are the network's (valid ones only; else none, as before)."""
    good = tmp_path / "good.npz"
    make().save(good)
    for data, classes in [
        ({"task": "classification", "classes": ["x", "y", "z"]}, ["x", "y", "z"]),
        ({"task": "classification", "classes": ["x", "y"]}, None),  # not one per output
        ({"task": "regression", "classes": None}, None),
    ]:
        rewrite(good, tmp_path / "old.npz", config=lambda c, d=data: c.update(data=d))
        net = bpgpu.load(tmp_path / "old.npz")
        assert (None if net.classes is None else net.classes.tolist()) == classes
    assert bpgpu.load(good).classes is None


def test_truncated_and_non_zip_files_are_refused(tmp_path):
    good = tmp_path / "good.npz"
    make().save(good)
    data = good.read_bytes()
    for i, cut in enumerate((10, len(data) // 2, len(data) - 30)):
        p = tmp_path / f"cut{i}.npz"
        p.write_bytes(data[:cut])
        with pytest.raises(bpgpu.ModelFileError):
            bpgpu.load(p)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(bpgpu.ModelFileError, match="not a readable zip"):
        bpgpu.load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        bpgpu.load(tmp_path / "absent.npz")


def test_a_zip_bomb_member_is_not_inflated(tmp_path):
    """A member that decompresses to far more than its header promises is cut off."""
    good = tmp_path / "good.npz"
    make().save(good)
    header = npy(np.zeros(7, np.float32))[:-28]
    bomb = header + b"\0" * (64 << 20)
    bad = tmp_path / "bomb.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            zout.writestr(name, bomb if name == "b1.npy" else zin.read(name))
    assert bad.stat().st_size < 1 << 20
    with pytest.raises(bpgpu.ModelFileError, match="data bytes"):
        bpgpu.load(bad)


def test_files_written_by_an_earlier_version_load_and_resume(tmp_path):
    """A model file and a mid-training checkpoint written by bpgpu 0.1.0 at commit
    c45dbcb (before the layer, optimizer and backend-operation redesign): the model gives
    the outputs it gave then, and resuming the checkpoint trains the weights that
    version trained, bit for bit (same arithmetic, in the same order)."""
    import shutil
    from pathlib import Path

    data = Path(__file__).parent / "data"
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 3, size=40)
    net = bpgpu.load(data / "model-0.1.0-c45dbcb.npz", backend="numpy")
    assert [a.name for a in net.activations] == ["prelu", "tanh", "softmax"]
    want = np.load(data / "model-0.1.0-c45dbcb-outputs.npy")
    np.testing.assert_array_equal(bpgpu.to_numpy(net.forward(X)), want)
    ckpt = shutil.copy(data / "checkpoint-0.1.0-c45dbcb.npz", tmp_path / "c.npz")
    resumed = bpgpu.load(ckpt, backend="numpy")  # a checkpoint is a loadable model too
    h = resumed.fit(X, y, epochs=4, resume=ckpt)
    assert h.epoch == [1, 2, 3, 4]
    got = np.concatenate([w.ravel() for w in resumed.get_weights()])
    np.testing.assert_array_equal(got, np.load(data / "checkpoint-0.1.0-c45dbcb-resumed.npy"))


def test_a_transposed_weight_matrix_is_refused(tmp_path):
    """Same number of elements, other shape: a validator counting elements would load it."""
    src, dst = tmp_path / "m.npz", tmp_path / "t.npz"
    make().save(src)
    rewrite(src, dst, replace={"W1.npy": npy(np.zeros((5, 7), np.float32))})
    with pytest.raises(
        bpgpu.ModelFileError, match=r"W1.npy: shape \(5, 7\), the config implies \(7, 5\)"
    ):
        bpgpu.load(dst)


@pytest.mark.parametrize("scale", [0.0, -2.0])
def test_a_non_positive_input_scale_is_a_model_file_error_naming_the_file(scale, tmp_path):
    src, dst = tmp_path / "m.npz", tmp_path / "bad-scale.npz"
    make().save(src)
    rewrite(src, dst, replace={"x_scale.npy": npy(np.full(5, scale, np.float32))})
    with pytest.raises(
        bpgpu.ModelFileError, match=r"bad-scale.npz: x_scale.npy holds a scale <= 0"
    ):
        bpgpu.load(dst)


def test_atomic_write_syncs_the_data_before_the_rename(tmp_path, monkeypatch):
    """Without fsync before os.replace a crash can leave a renamed, empty file."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1]
    )
    io.atomic_write(tmp_path / "f.bin", lambda f: f.write(b"data"))
    assert events[:2] == ["fsync", "replace"], events
    assert (tmp_path / "f.bin").read_bytes() == b"data"


def test_files_get_the_umask_permissions_and_an_overwritten_file_keeps_its_mode(tmp_path):
    old = os.umask(0o027)
    try:
        make().save(tmp_path / "new.npz")
        assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600
        shared = tmp_path / "shared.npz"
        shared.write_bytes(b"old")
        shared.chmod(0o664)
        make().save(shared)
        assert shared.stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_write_errors_name_the_users_path_not_the_temporary_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a folder should be: fails as root too
    with pytest.raises(OSError, match=f"cannot write model file {blocker / 'm.npz'}: ") as e:
        make().save(blocker / "m.npz")
    assert "a file stands where its folder should be" in str(e.value)
    assert ".tmp" not in str(e.value)


def test_write_errors_in_a_read_only_folder_name_the_users_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user that may write anywhere (root)")
        with pytest.raises(OSError, match=f"cannot write {folder / 'm.npz'}") as e:
            make().save(folder / "m.npz")
        assert ".tmp" not in str(e.value)
    finally:
        folder.chmod(0o700)


def test_output_paths_are_checked_before_the_work(tmp_path):
    deep = tmp_path / "a" / "b" / "m.npz"
    assert io.prepare_output(deep) == str(deep) and deep.parent.is_dir()  # made at once
    with pytest.raises(IsADirectoryError, match="is a folder"):
        io.prepare_output(tmp_path / "a")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match=f"cannot write output file {blocker / 'm.npz'}: cannot"):
        io.prepare_output(blocker / "m.npz")


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda tr: tr["optimizer_now"].update(lr="fast"), "optimizer record is not valid"),
        (lambda tr: tr["optimizer_now"].update(lr=-1.0), "optimizer record is not valid"),
        (lambda tr: tr["optimizer_now"].pop("weight_decay"), "optimizer record is not valid"),
        (lambda tr: tr["optimizer_now"].update(name="adam"), "optimizer record is not valid"),
        (lambda tr: tr.update(optimizer_slots="velocity"), "training' section is invalid"),
    ],
)
def test_a_checkpoints_optimizer_record_is_checked(tmp_path, edit, match):
    """The rate a schedule reached, the class and the state's slots come from the file:
    values that cannot be an optimizer's are a ModelFileError, and change nothing."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 5)), rng.integers(0, 3, size=20)
    src, dst = tmp_path / "c.npz", tmp_path / "bad.npz"
    make().fit(X, y, epochs=1, optimizer="momentum", checkpoint=src)
    rewrite(src, dst, config=lambda cfg: edit(cfg["training"]))
    net = make()
    before = net.get_weights()
    with pytest.raises(bpgpu.ModelFileError, match=match):
        net.fit(X, y, epochs=2, resume=dst)
    assert all(np.array_equal(a, b) for a, b in zip(net.get_weights(), before))


def test_save_makes_a_missing_folder_and_refuses_a_folder_as_the_file(tmp_path):
    net = make()
    path = tmp_path / "runs" / "today" / "m.npz"
    net.save(path)  # as fit(checkpoint=...) and the CLI's -o do
    assert bpgpu.load(path).get_weights()[0].tolist() == net.get_weights()[0].tolist()
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        net.save(tmp_path / "runs")
    # a folder that does not exist yet, named as one ("new/"): said so, nothing made
    with pytest.raises(IsADirectoryError, match="new/ is a folder; give a file name"):
        net.save(f"{tmp_path}/new/")
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="file name is empty"):
        net.save("")


def test_a_path_that_is_not_a_path_is_a_type_error_saying_what_to_pass(tmp_path, monkeypatch):
    from bpgpu import datasets

    net, X, y = make(), np.zeros((4, 5)), np.array([0, 1, 2, 0])
    before = [w.copy() for w in net.get_weights()]
    calls = {
        "model file": [lambda p: net.save(p), lambda p: bpgpu.load(p)],
        "checkpoint": [
            lambda p: net.fit(X, y, epochs=1, checkpoint=p),
            lambda p: net.fit(X, y, epochs=1, resume=p),
        ],
        "the CSV file": [datasets.load_csv],
        "the .npz file": [datasets.load_npz],
        "the MNIST folder": [datasets.load_mnist],
    }
    for what, fns in calls.items():
        for fn in fns:
            for bad in (123, 1.5) if what == "checkpoint" else (123, None, 1.5):  # None: none
                with pytest.raises(TypeError, match=f"{what} must be a file path .*; got {bad}"):
                    fn(bad)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
    # bytes and pathlib paths are paths; a missing checkpoint is named as one
    monkeypatch.chdir(tmp_path)
    net.save(b"m.npz")
    assert bpgpu.load(tmp_path / "m.npz").sizes == net.sizes
    with pytest.raises(FileNotFoundError, match="nope.npz: no such checkpoint"):
        net.fit(X, y, epochs=1, resume="nope.npz")


def _twice_tanh(xp, X, a=None):  # module level: an activation of a user's own that pickles
    return 2 * xp.tanh(X)


def _twice_tanh_slope(xp, X, Y, a=None):
    return 2 - Y * Y / 2


def _own_tanh(name: str):
    import dataclasses

    from bpgpu import activations

    fields = dict(f=_twice_tanh, df=_twice_tanh_slope, vjp_fn=None, c_f=None, c_vjp=None)
    return dataclasses.replace(activations.get("tanh"), name=name, **fields)


def _l1_cost():
    """A cost of the user's own: half the absolute error, its derivative the sign."""
    from bpgpu import costs

    return costs.Cost(
        "half_l1",
        fn=lambda xp, Y, T: xp.sum(xp.abs(Y - T), axis=1) / 2,
        dE_dY=lambda xp, Y, T: xp.sign(Y - T) / 2,
    )


@pytest.mark.parametrize("name", ["twice_tanh", "tanh"])  # a new name; one like the table's
def test_a_model_of_your_own_objects_loads_with_them_given_by_name(tmp_path, name):
    """A file names the activations and cost and cannot hold code: one of the user's own
    is marked as such, and loads only when ``custom`` gives the object for its name
    (Keras's custom_objects). Without it, or with an object of the wrong kind, loading
    says how to fix it; with it, the network predicts what the saved one did."""
    X = np.random.default_rng(0).normal(size=(12, 3))
    act, cost = _own_tanh(name), _l1_cost()
    net = bpgpu.MLP([3, 4, 2], hidden=act, output="identity", cost=cost, seed=1)
    net.save(tmp_path / "m.npz")
    want = bpgpu.to_numpy(net.predict(X))
    with pytest.raises(bpgpu.ModelFileError, match=f"activation '{name}' is an object of your"):
        bpgpu.load(tmp_path / "m.npz")
    with pytest.raises(bpgpu.ModelFileError, match="custom=.*'half_l1'"):
        bpgpu.load(tmp_path / "m.npz", custom={name: act})
    with pytest.raises(TypeError, match=f"custom\\['{name}'\\] must be a bpgpu.activations"):
        bpgpu.load(tmp_path / "m.npz", custom={name: cost, "half_l1": cost})
    with pytest.raises(TypeError, match="custom must be a dict"):
        bpgpu.load(tmp_path / "m.npz", custom=[act, cost])
    other = _own_tanh("another")
    with pytest.raises(TypeError, match=f"custom\\['{name}'\\] is the activation named 'an"):
        bpgpu.load(tmp_path / "m.npz", custom={name: other, "half_l1": cost})
    back = bpgpu.load(tmp_path / "m.npz", custom={name: act, "half_l1": cost})
    assert back.activations[0] is act and back.cost is cost
    assert back.activations[1] is bpgpu.activations.get("identity")  # the table's, by name
    np.testing.assert_array_equal(bpgpu.to_numpy(back.predict(X)), want)


def test_one_name_for_two_objects_is_refused_before_anything_is_written(tmp_path):
    """The table's tanh in one layer and a tanh of the user's own in another: a loader
    gets one object per name, so the file could not say which layer has which. Refused
    up front, nothing written, no weight touched."""
    X, y = np.random.default_rng(0).normal(size=(12, 3)), np.arange(12) % 2
    mixed = bpgpu.MLP([3, 4, 4, 2], hidden=["tanh", _own_tanh("tanh")], seed=1)
    before = mixed.get_weights()
    with pytest.raises(ValueError, match="two different objects of this network are both"):
        mixed.save(tmp_path / "out" / "m.npz")
    with pytest.raises(ValueError, match="both called 'tanh'"):
        mixed.fit(X, y, epochs=1, checkpoint=tmp_path / "out" / "c.npz")
    assert not (tmp_path / "out").exists()
    assert all(np.array_equal(a, b) for a, b in zip(mixed.get_weights(), before))


def test_copies_and_pickles_keep_your_own_objects():
    import copy
    import pickle

    X = np.random.default_rng(0).normal(size=(12, 3))
    for name in ("twice_tanh", "tanh"):
        net = bpgpu.MLP([3, 4, 2], hidden=_own_tanh(name), backend="numpy", seed=1)
        want = bpgpu.to_numpy(net.predict(X))
        for other in (copy.deepcopy(net), copy.copy(net), pickle.loads(pickle.dumps(net))):
            assert other.activations[0].f is _twice_tanh
            np.testing.assert_array_equal(bpgpu.to_numpy(other.predict(X)), want)
    table = bpgpu.activations.get("tanh")
    plain = bpgpu.MLP([3, 4, 2], hidden="tanh", backend="numpy", seed=1)
    assert pickle.loads(pickle.dumps(plain)).activations[0] is table


def test_a_checkpoint_of_your_own_objects_resumes_exactly(tmp_path):
    """fit(checkpoint=...) with an activation of the user's own: the checkpoint names it,
    the network resuming holds it, and the resumed fit equals the uninterrupted one. A
    network with bpgpu's tanh is another network than one with a tanh of its own."""
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    act = _own_tanh("twice_tanh")
    kw = dict(batch_size=8, optimizer="adam", seed=3)
    whole = bpgpu.MLP([3, 5, 2], hidden=act, dtype="float64", seed=2)
    part = whole.to("numpy")
    whole.fit(X, y, epochs=4, **kw)
    part.fit(X, y, epochs=2, checkpoint=tmp_path / "c.npz", **kw)
    again = bpgpu.load(tmp_path / "c.npz", custom={"twice_tanh": act})
    again.fit(X, y, epochs=4, resume=tmp_path / "c.npz", **kw)
    for a, b in zip(again.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    shadow = bpgpu.MLP([3, 5, 2], hidden="tanh", dtype="float64", seed=2)
    shadow.fit(X, y, epochs=1, checkpoint=tmp_path / "t.npz", **kw)
    mine = bpgpu.MLP([3, 5, 2], hidden=_own_tanh("tanh"), dtype="float64", seed=2)
    with pytest.raises(ValueError, match="holds a different network"):
        mine.fit(X, y, epochs=2, resume=tmp_path / "t.npz", **kw)


def test_an_equal_copy_of_a_table_entry_is_the_table_entry(tmp_path):
    """A copy with the same name and functions (copy.deepcopy, dataclasses.replace with
    nothing changed) is bpgpu's own: saved and loaded by name, nothing to give back."""
    import copy
    import dataclasses

    tanh = bpgpu.activations.get("tanh")
    for same in (copy.deepcopy(tanh), dataclasses.replace(tanh)):
        net = bpgpu.MLP([3, 4, 2], hidden=same, seed=1)
        net.save(tmp_path / "m.npz")
        assert "custom" not in net.config()
        assert bpgpu.load(tmp_path / "m.npz").activations[0] is tanh
