"""Loaders on small files the tests write, the embedded digits, split and scaling."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from bpgpu import csvfile, datasets


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
    *_, header = datasets.load_csv(tmp_path / "d.csv", label_column=0, return_header=True)
    assert header == ["label", "a", "b"]
    (tmp_path / "plain.csv").write_text("1,0.5,2\n0,1.5,3\n")
    assert datasets.load_csv(tmp_path / "plain.csv", return_header=True)[2] is None
    (tmp_path / "bad.csv").write_text("a,b,c\n1,x,0\n")
    with pytest.raises(ValueError, match=r"row 2, column 2 \(b\) holds 'x', not a number"):
        datasets.load_csv(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    "text, X, y",
    [
        ("\ufeffa,b,label\n1,2,0\n3,4,1\n", [[1, 2], [3, 4]], [0, 1]),  # byte-order mark
        ("1;2;0\n3;4;1\n", [[1, 2], [3, 4]], [0, 1]),  # semicolons, no header
        ('"1.5","2",0\n"3","4",1\n', [[1.5, 2], [3, 4]], [0, 1]),  # quoted numbers
        ("1\t2\t0\n\n3\t4\t1\n", [[1, 2], [3, 4]], [0, 1]),  # tabs and a blank line
        ("x,y,kind\n1,2,cat\n3,4,dog\n", [[1, 2], [3, 4]], ["cat", "dog"]),  # text labels
    ],
)
@pytest.mark.parametrize("reader", ["quick", "exact"])
def test_csv_files_as_people_write_them(tmp_path, text, X, y, reader, monkeypatch):
    if reader == "exact":  # the field-by-field reader the quick one falls back to
        monkeypatch.setattr(csvfile, "_quick", lambda *a: None)
    (tmp_path / "d.csv").write_text(text, encoding="utf-8")
    got_X, got_y = datasets.load_csv(tmp_path / "d.csv")
    np.testing.assert_array_equal(got_X, X)
    assert list(got_y) == y


@pytest.mark.parametrize(
    "text, match",
    [
        (",2,0\n3,4,1\n", "row 1, column 1 is empty"),  # never dropped as a "header"
        ("1,2,0\n3,,1\n", "row 2, column 2 is empty"),
        ("a,b,c\n1,2,0\n3,4\n", "row 3 has 2 fields, row 2 has 3"),
        ("1,2,0\n3,4,\n", r"row 2, column 3 \(the label\) is empty"),
        ("a,b,c\n", "a header line and no data rows"),
        ("", "no data"),
    ],
)
def test_bad_csv_files_are_refused_naming_row_and_column(tmp_path, text, match):
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(ValueError, match=match):
        datasets.load_csv(tmp_path / "d.csv")


ROWS = [[1.5, -2.0], [3.0, 0.25]]  # what every spelling below holds, labels 0 and 1


@pytest.mark.parametrize(
    "text, encoding",
    [
        ("a;b;label\n1,5;-2;0\n3;0,25;1\n", "utf-8"),  # decimal commas with semicolons
        ("sep=;\n1,5;-2;0\n3;0,25;1\n", "utf-8"),  # Excel's separator line
        ("a\tb\tlabel\n1.5\t-2\t0\n3\t0.25\t1\n", "utf-16"),  # Excel's Unicode text
        ("1.5 -2 0\n   3   0.25   1  \n", "utf-8"),  # np.savetxt's spaces, aligned
        ("# a b label\n1.5 -2 0\n3 0.25 1\n", "utf-8"),  # np.savetxt's header
        ("a,b,label\r\n1.5,-2,0\r\n3,0.25,1\r\n", "utf-8"),  # Windows line ends
    ],
)
@pytest.mark.parametrize("reader", ["quick", "exact"])
def test_csv_spellings_of_one_table(tmp_path, text, encoding, reader, monkeypatch):
    if reader == "exact":
        monkeypatch.setattr(csvfile, "_quick", lambda *a: None)
    (tmp_path / "d.csv").write_bytes(text.encode(encoding))
    X, y, header = datasets.load_csv(tmp_path / "d.csv", return_header=True)
    np.testing.assert_array_equal(X, ROWS)
    assert y.dtype == np.int64 and list(y) == [0, 1]
    assert header == (["a", "b", "label"] if text.startswith(("a", "#")) else None)


def _zipped(path, members):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip", ".gz"])
def test_compressed_csv_files_are_read_through(tmp_path, suffix):
    import bz2
    import lzma

    data = b"a,b,label\n1.5,-2,0\n3,0.25,1\n"
    path = tmp_path / ("d" + suffix)
    if suffix.endswith(".zip"):  # a Mac's zip: the file and its resource fork folder
        _zipped(path, {"d.csv": data, "__MACOSX/._d.csv": b"\x00\x05"})
    else:
        pack = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
        path.write_bytes(pack["." + suffix.rsplit(".", 1)[1]](data))
    X, y = datasets.load_csv(path)
    np.testing.assert_array_equal(X, ROWS)
    assert list(y) == [0, 1]
    assert datasets.format_of(path) == ("csv" if suffix != ".gz" else None)
    assert datasets.format_of(str(path).upper()) == datasets.format_of(path)


@pytest.mark.parametrize(
    "data, match",
    [
        (gzip.compress(b"1,2,0\n")[:-6], "a damaged gzip file"),
        (b"(\xb5/\xfd\x00\x00", r"zstd-compressed; decompress it first \(zstd -d"),
        (b"\x93NUMPY\x01\x00v\x00{'descr'", "a binary file, not CSV text"),
        ("a,b,c\ncaf\xe9,1,0\n".encode("latin-1"), "not UTF-8 text .* iconv -f latin1"),
        (
            b"a;b;c\n1,5;2.5;0\n",
            r"decimal commas \(row 2, column 1: '1,5'\) and "
            r"decimal points \(row 2, column 2: '2.5'\)",
        ),
    ],
)
def test_csv_files_that_cannot_be_read_say_why(tmp_path, data, match):
    (tmp_path / "d.csv").write_bytes(data)
    with pytest.raises(ValueError, match=match):
        datasets.load_csv(tmp_path / "d.csv")


def test_a_zip_of_several_files_is_refused_naming_them(tmp_path):
    _zipped(tmp_path / "d.zip", {"train.csv": b"1,2,0\n", "test.csv": b"3,4,1\n"})
    with pytest.raises(ValueError, match=r"a zip archive of 2 files \(train.csv, test.csv\)"):
        datasets.load_csv(tmp_path / "d.zip")


def test_the_label_column_by_its_header_name(tmp_path):
    (tmp_path / "d.csv").write_text("a,price,b\n1,10.5,2\n3,20,4\n")
    X, y, header = datasets.load_csv(tmp_path / "d.csv", "price", return_header=True)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [10.5, 20])
    assert header == ["a", "price", "b"]
    with pytest.raises(ValueError, match=r"no column named 'prize'; did you mean 'price'\?"):
        datasets.load_csv(tmp_path / "d.csv", "prize")
    (tmp_path / "plain.csv").write_text("1,10.5,2\n3,20,4\n")
    with pytest.raises(ValueError, match="no header line to find the label column 'price'"):
        datasets.load_csv(tmp_path / "plain.csv", "price")
    with pytest.raises(ValueError, match="a column number or a header name; got 1.0"):
        datasets.load_csv(tmp_path / "plain.csv", 1.0)


def test_well_formed_csv_files_are_parsed_by_numpy_not_field_by_field(tmp_path, monkeypatch):
    """A well-formed file (numbers, text labels, a header, quotes around numbers) is read
    by NumPy's parser in C: the field-by-field reader (a Python string per field: 30x
    slower and 4x the memory on a 28 MB file) is only the fallback that names a bad
    field. Both give the same arrays."""
    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(50, 6)), 4)
    labels = np.array(["ant", "bee", "cat"])[rng.integers(0, 3, 50)]
    rows = [",".join(["kind", *(f"p{i}" for i in range(6))])]
    rows += [
        ",".join([k, *(f'"{v}"' if i == 2 else str(v) for i, v in enumerate(x))])
        for k, x in zip(labels, X)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    np.savetxt(tmp_path / "n.csv", np.c_[X, labels == "bee"], delimiter=",", header="a,b,c,d,e,f,y")
    exact = {
        name: datasets.load_csv(tmp_path / name, c)
        for name, c in (("t.csv", "kind"), ("n.csv", -1))
    }
    exact_inputs = datasets.read_csv(tmp_path / "n.csv")

    def refuse(*a, **k):
        raise AssertionError("the field-by-field reader ran")

    monkeypatch.setattr(csvfile, "_rows", refuse)
    for (name, c), (X_e, y_e) in zip((("t.csv", "kind"), ("n.csv", -1)), exact.values()):
        X_q, y_q = datasets.load_csv(tmp_path / name, c)
        np.testing.assert_array_equal(X_q, X_e)
        assert y_q.dtype == y_e.dtype and list(y_q) == list(y_e)
    np.testing.assert_array_equal(datasets.read_csv(tmp_path / "n.csv"), exact_inputs)
    got, dropped, _ = csvfile.read_inputs(tmp_path / "t.csv", 6, 0)
    assert dropped == 0
    np.testing.assert_array_equal(got, X)


def test_an_out_of_range_label_column_is_a_clear_error(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,0\n3,4,1\n")
    for col in (3, -4):
        with pytest.raises(ValueError, match=f"label column {col} is out of range: the file has 3"):
            datasets.load_csv(tmp_path / "d.csv", label_column=col)


def test_text_labels_encode_to_class_indices():
    codes, classes = datasets.encode_labels(np.array(["dog", "cat", "dog", "emu"]))
    assert list(codes) == [1, 0, 1, 2] and list(classes) == ["cat", "dog", "emu"]


def test_idx_headers_that_overflow_or_promise_too_much_are_refused_in_bounded_memory(tmp_path):
    """A 4-d header of 2^32-1 per dimension overflows int64; a plausible header over a
    short file promises more than is there. Both refused with the numbers, without
    allocating what the header claims (tracemalloc's peak stays small)."""
    import tracemalloc

    huge = bytes([0, 0, 0x08, 4]) + (b"\xff\xff\xff\xff" * 4) + b"\0" * 1000
    (tmp_path / "huge").write_bytes(huge)
    with pytest.raises(ValueError, match=r"declares an array of shape \(4294967295, .*bytes"):
        datasets.read_idx(tmp_path / "huge")
    liar = bytes([0, 0, 0x08, 2]) + np.array([60000, 10000], ">u4").tobytes() + b"\1" * 5000
    with gzip.open(tmp_path / "liar.gz", "wb") as f:
        f.write(liar)
    tracemalloc.start()
    try:
        with pytest.raises(
            ValueError, match="implies 600,000,000 data bytes; the file holds 5,000"
        ):
            datasets.read_idx(tmp_path / "liar.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, peak


def test_npz_loader_refuses_what_is_not_an_npz(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(ValueError, match=r"is a \.npy file") as e:
        datasets.load_npz(tmp_path / "a.npy")
    assert "allow_pickle" not in str(e.value)
    (tmp_path / "t.npz").write_text("X,y\n1,2\n")
    with pytest.raises(ValueError, match="is not an .npz file") as e:
        datasets.load_npz(tmp_path / "t.npz")
    assert "allow_pickle" not in str(e.value)
    np.savez(tmp_path / "o.npz", X=np.array([object()] * 2), y=np.zeros(2))
    with pytest.raises(ValueError, match="holds Python objects") as e:
        datasets.load_npz(tmp_path / "o.npz")
    assert "allow_pickle" not in str(e.value)
    np.savez(tmp_path / "z.npz", X=np.float64(3.0), y=np.zeros(2))
    with pytest.raises(ValueError, match="0-d"):
        datasets.load_npz(tmp_path / "z.npz")
    np.savez(tmp_path / "zy.npz", X=np.ones((2, 2)), y=np.int64(1))
    with pytest.raises(ValueError, match="0-d"):
        datasets.load_npz(tmp_path / "zy.npz")


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
