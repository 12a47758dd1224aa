"""Loaders on small files the tests write, the embedded digits, split and scaling."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from bpgpu import datasets


def test_embedded_digits():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 16 and set(np.unique(y)) == set(range(10))


def write_idx(path, a, code=0x08, gz=False):
    head = bytes([0, 0, code, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes()
    data = head + a.astype(a.dtype.newbyteorder(">") if a.dtype.itemsize > 1 else a.dtype).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(6, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=6, dtype=np.uint8)
    ext = ".gz" if gz else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{ext}", imgs, gz=gz)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{ext}", labels, gz=gz)
    X, y = datasets.load_mnist(tmp_path, "test")
    np.testing.assert_array_equal(X, imgs.reshape(6, 12))
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(FileNotFoundError, match="train-images"):
        datasets.load_mnist(tmp_path, "train")


def test_bad_idx_files_are_refused(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        datasets.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((3, 4), np.uint8))
    data = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(data[:-3])
    with pytest.raises(ValueError, match="data bytes"):
        datasets.read_idx(tmp_path / "short")
    big = np.arange(6, dtype=">i4").reshape(2, 3)
    write_idx(tmp_path / "i4", big, code=0x0C)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "i4"), big)


def test_npz_loader(tmp_path):
    np.savez(tmp_path / "d.npz", features=np.ones((3, 2)), labels=np.array([0, 1, 0]))
    X, y = datasets.load_npz(tmp_path / "d.npz", x_key="features", y_key="labels")
    assert X.shape == (3, 2) and list(y) == [0, 1, 0]
    with pytest.raises(ValueError, match="x_key"):
        datasets.load_npz(tmp_path / "d.npz")


def test_csv_loader_with_header_and_label_column(tmp_path):
    (tmp_path / "d.csv").write_text("label,a,b\n1,0.5,2\n0,1.5,3\n")
    X, y = datasets.load_csv(tmp_path / "d.csv", label_column=0)
    np.testing.assert_array_equal(X, [[0.5, 2], [1.5, 3]])
    assert y.dtype == np.int64 and list(y) == [1, 0]
    (tmp_path / "bad.csv").write_text("a,b\n1,x\n")
    with pytest.raises(ValueError, match="numeric CSV"):
        datasets.load_csv(tmp_path / "bad.csv")


def test_split_is_deterministic_and_disjoint():
    X, y = np.arange(100.0).reshape(50, 2), np.arange(50)
    a, b = datasets.split(X, y, seed=3), datasets.split(X, y, seed=3)
    assert np.array_equal(a.y_test, b.y_test) and np.array_equal(a.y_val, b.y_val)
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (35, 5, 10)
    assert sorted(np.concatenate([a.y_train, a.y_val, a.y_test])) == list(range(50))
    assert not np.array_equal(datasets.split(X, y, seed=4).y_test, a.y_test)


def test_standardize_handles_constant_features():
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    mean, scale = datasets.standardize(X)
    np.testing.assert_array_equal(mean, [2.0, 5.0])
    np.testing.assert_array_equal(scale, [1.0, 1.0])
