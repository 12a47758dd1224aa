"""Model files in the safetensors format: written and read by bpgpu, proven by safetensors'
own loaders, and hostile files refused with a clear error and bounded memory."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from conftest import perturbed_net

import bpgpu
from bpgpu import ModelFileError, safetensors_file
from bpgpu.activations import ACTIVATIONS

HIDDEN = [a.name for a in ACTIVATIONS.values() if a.hidden_ok]


def _net(hidden="prelu", output="softmax", dtype="float32", scaled=True, sizes=(5, 7, 4, 3)):
    return perturbed_net(hidden, output, dtype, scaled, sizes, noise=0.1)


def _X(n=9, d=5):
    return np.random.default_rng(1).normal(size=(n, d)) * 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_round_trip_is_exact_for_every_activation(tmp_path, hidden, dtype):
    net = _net(hidden, dtype=dtype)
    net.classes = ["a", "b", "c"]
    net.data_info = {"source": "x.csv", "rows": 9}
    path = tmp_path / "m.safetensors"
    net.save(path)
    back = bpgpu.load(path, backend="numpy")
    for a, b in zip(back.get_weights(), net.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert back.dtype == dtype
    assert [a.name for a in back.activations] == [a.name for a in net.activations]
    assert list(back.classes) == ["a", "b", "c"] and back.data_info == net.data_info
    assert np.array_equal(np.asarray(back.predict(_X())), np.asarray(net.predict(_X())))


def test_the_file_is_safetensors_with_the_torch_state_dict_names(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    net = _net()
    path = tmp_path / "m.safetensors"
    net.save(path)
    tensors = st.load_file(str(path))
    names = {"0.mean", "0.scale", "1.weight", "1.bias", "2.weight", "3.weight", "3.bias"}
    names |= {"4.weight", "5.weight", "5.bias"}
    assert set(tensors) == names
    assert np.array_equal(tensors["1.weight"], net.get_weights()[0])
    assert np.array_equal(tensors["2.weight"], net.get_weights()[2])  # PReLU's slope
    assert np.array_equal(tensors["0.scale"], net.input_scaling[1])
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    assert json.loads(meta["bpgpu"])["sizes"] == [5, 7, 4, 3] and meta["format"] == "pt"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_loads_it_into_to_torch_as_it_stands(tmp_path, dtype):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    net = _net("elu", "sigmoid", dtype)
    path = tmp_path / "m.safetensors"
    net.save(path)
    seq = _net("elu", "sigmoid", dtype, sizes=(5, 7, 4, 3)).to_torch()  # other weights
    seq.load_state_dict(st.load_file(str(path)))  # strict: exactly its names and shapes
    with torch.no_grad():
        out = seq(torch.from_numpy(_X().astype(dtype))).numpy()
    np.testing.assert_allclose(out, np.asarray(net.predict(_X())), rtol=0, atol=1e-6)


def test_a_file_of_torchs_own_writing_loads_back_into_bpgpu(tmp_path):
    """bpgpu's reader takes what safetensors itself writes (its order, its padding)."""
    st = pytest.importorskip("safetensors.numpy")
    net = _net()
    ours = tmp_path / "ours.safetensors"
    net.save(ours)
    theirs = tmp_path / "theirs.safetensors"
    with open(ours, "rb") as f:
        f.seek(8)
        (n,) = struct.unpack("<Q", open(ours, "rb").read(8))
        meta = json.loads(f.read(n))["__metadata__"]
    st.save_file(st.load_file(str(ours)), str(theirs), metadata=meta)
    back = bpgpu.load(theirs)
    assert all(np.array_equal(a, b) for a, b in zip(back.get_weights(), net.get_weights()))


def test_the_format_is_told_by_the_first_bytes_as_well_as_the_suffix(tmp_path):
    net = _net()
    net.save(tmp_path / "m.safetensors")
    os.rename(tmp_path / "m.safetensors", tmp_path / "renamed.bin")
    back = bpgpu.load(tmp_path / "renamed.bin")
    assert np.array_equal(back.get_weights()[0], net.get_weights()[0])
    net.save(tmp_path / "m.npz")  # any other suffix: the npz archive, as always
    assert open(tmp_path / "m.npz", "rb").read(2) == b"PK"


@pytest.mark.parametrize("suffix", [".onnx", ".pt", ".pt2"])
def test_save_refuses_an_export_format_pointing_to_export(tmp_path, suffix):
    with pytest.raises(ValueError, match=r"net\.export"):
        _net().save(tmp_path / f"m{suffix}")
    assert not os.listdir(tmp_path)


def test_a_network_of_your_own_activation_round_trips_with_custom(tmp_path):
    import dataclasses

    own = dataclasses.replace(ACTIVATIONS["prelu"], name="my_prelu", f=ACTIVATIONS["prelu"].f)
    net = bpgpu.MLP([4, 6, 2], own, "softmax", backend="numpy")
    net.save(tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError, match="custom="):
        bpgpu.load(tmp_path / "m.safetensors")
    back = bpgpu.load(tmp_path / "m.safetensors", custom={"my_prelu": own})
    assert np.array_equal(back.get_weights()[2], net.get_weights()[2])


# ---- hostile files -------------------------------------------------------------------


def _parts(path):
    """(header dict, data bytes) of a safetensors file."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _write(path, header, data, n=None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text) if n is None else n) + text + data)


def _config_edit(key, value):
    def edit(h, d):
        cfg = json.loads(h["__metadata__"]["bpgpu"])
        cfg[key] = value
        h["__metadata__"]["bpgpu"] = json.dumps(cfg)
        return h, d

    return edit


def _tensor_edit(name, key, value):
    def edit(h, d):
        h[name][key] = value
        return h, d

    return edit


def _extra(h, d):
    h["extra"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(d), len(d) + 4]}
    return h, d + b"\0\0\0\0"


def _missing(h, d):
    del h["5.bias"]
    return h, d


def _nan(h, d):
    lo = h["5.bias"]["data_offsets"][0]
    return h, d[:lo] + np.float32(np.nan).tobytes() + d[lo + 4 :]


def _no_metadata(h, d):
    del h["__metadata__"]
    return h, d


def _bad_scale(h, d):  # written so by a tool that drops bpgpu's checksum
    del h["__metadata__"][safetensors_file.CHECKSUM_KEY]
    lo = h["0.scale"]["data_offsets"][0]
    return h, d[:lo] + np.float32(-1).tobytes() + d[lo + 4 :]


def _flipped_bit(h, d):
    return h, d[:9] + bytes([d[9] ^ 1]) + d[10:]


def _bad_checksum(h, d):
    h["__metadata__"][safetensors_file.CHECKSUM_KEY] = 12
    return h, d


def _swap_offsets(h, d):  # two tensors claim the same bytes
    h["1.bias"]["data_offsets"] = list(h["0.mean"]["data_offsets"])
    h["1.bias"]["data_offsets"][1] = h["1.bias"]["data_offsets"][0] + 28
    return h, d


def _gap(h, d):
    for e in h.values():
        if isinstance(e, dict) and "data_offsets" in e:
            e["data_offsets"] = [o + 4 for o in e["data_offsets"]]
    return h, b"\0" * 4 + d


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_no_metadata, "from_torch"),
        (_config_edit("sizes", [5, -1, 3]), "sizes"),
        (_config_edit("activations", ["relu", "nope", "softmax"]), "unknown activation"),
        (_config_edit("format_version", 99), "format version"),
        (_config_edit("kind", "checkpoint"), "checkpoint"),
        (_tensor_edit("1.weight", "dtype", "F16"), "dtype 'F16'"),
        (_tensor_edit("1.weight", "dtype", "F64"), "dtype 'F64'"),
        (_tensor_edit("1.weight", "shape", [5, 7]), r"shape \[5, 7\]"),
        (_tensor_edit("1.weight", "data_offsets", [0]), "data_offsets"),
        (_tensor_edit("1.weight", "data_offsets", "0-10"), "data_offsets"),
        (_tensor_edit("1.weight", "data_offsets", [10, 2]), "data_offsets"),
        (_tensor_edit("1.weight", "data_offsets", [0, 10**12]), "bytes for shape"),
        (_tensor_edit("1.weight", "shape", "big"), "shape"),
        (_extra, "unexpected: extra"),
        (_missing, r"missing: 5\.bias"),
        (_nan, "NaN"),
        (_bad_scale, "scale"),
        (_flipped_bit, "sha256"),
        (_bad_checksum, "not text"),
        (_swap_offsets, "overlaps"),
        (_gap, "gap"),
    ],
)
def test_a_lying_or_altered_file_is_refused_with_what_is_wrong(tmp_path, edit, match):
    path = tmp_path / "m.safetensors"
    _net().save(path)
    _write(path, *edit(*_parts(path)))
    with pytest.raises(ModelFileError, match=match) as e:
        bpgpu.load(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "shorter than"),
        (b"\x01\x00", "shorter than"),
        (struct.pack("<Q", 2**63) + b"{}", "more than"),  # a huge header: not read
        (struct.pack("<Q", 1000) + b"{}", "the file holds 2"),  # a header past the end
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "not valid JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 14) + b'{"a":1, "a":2}', "repeats"),
    ],
)
def test_a_file_that_is_no_safetensors_is_refused(tmp_path, raw, match):
    path = tmp_path / "m.safetensors"
    path.write_bytes(raw)
    with pytest.raises(ModelFileError, match=match):
        bpgpu.load(path)


def test_a_file_rewritten_without_the_checksum_still_loads(tmp_path):
    path = tmp_path / "m.safetensors"
    net = _net()
    net.save(path)
    h, d = _parts(path)
    del h["__metadata__"][safetensors_file.CHECKSUM_KEY]
    _write(path, h, d)
    assert np.array_equal(bpgpu.load(path).get_weights()[0], net.get_weights()[0])


def test_a_truncated_file_and_trailing_bytes_are_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    _net().save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[:-4])
    with pytest.raises(ModelFileError, match="the tensors hold"):
        bpgpu.load(path)
    path.write_bytes(raw + b"\0" * 8)
    with pytest.raises(ModelFileError, match="the tensors hold"):
        bpgpu.load(path)


def test_a_file_declaring_more_than_max_bytes_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    _net(sizes=(50, 40, 3)).save(path)
    read = []
    real = np.frombuffer
    monkeypatch.setattr(np, "frombuffer", lambda *a, **k: read.append(1) or real(*a, **k))
    with pytest.raises(ModelFileError, match="max_bytes"):
        bpgpu.load(path, max_bytes=1000)
    assert not read
    assert bpgpu.load(path, max_bytes=10**6).sizes == [50, 40, 3]


def test_the_header_bound_is_what_the_reader_enforces(tmp_path):
    path = tmp_path / "m.safetensors"
    n = safetensors_file.MAX_HEADER_BYTES + 1
    path.write_bytes(struct.pack("<Q", n) + b"{" + b" " * (n - 1))
    with pytest.raises(ModelFileError, match=f"claims {n} bytes, more than"):
        bpgpu.load(path)


def test_a_non_finite_network_is_not_saved_and_the_old_file_stays(tmp_path):
    path = tmp_path / "m.safetensors"
    net = _net()
    net.save(path)
    before = path.read_bytes()
    w = net.get_weights()
    w[0][0, 0] = np.inf
    net.model.params[0] = net.backend.asarray(w[0])
    with pytest.raises(ValueError, match="NaN or inf"):
        net.save(path)
    assert path.read_bytes() == before
