"""The command line as a new user meets it: data that are not 0..K-1 labels, regression
and binary tasks, recorded splits, contradicting options, one-line errors, --help."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import bpgpu
from bpgpu import cli


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("BPGPU_BACKEND", "numpy")


def main(*args) -> int:
    return cli.main([str(a) for a in args])


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "bpgpu", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "BPGPU_BACKEND": "numpy"},
    )


def write_csv(path, X, y, header=None):
    rows = [",".join(header)] if header else []
    rows += [",".join([*(f"{v:.6g}" for v in x), str(t)]) for x, t in zip(X, y)]
    path.write_text("\n".join(rows) + "\n")
    return path


def blobs(n=150, k=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    return rng.normal(size=(n, d)) + 3 * np.eye(k, d)[y], y


def config(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("config.json"))


FAST = ["--epochs", "3", "--no-plot", "--hidden", "16"]


def test_evaluate_test_uses_the_split_the_model_was_trained_with(tmp_path, capsys):
    """Seed and fractions come from the model file: the "test" part is the rows held out
    in training, whatever evaluate's own defaults are."""
    X, y = blobs()
    data = write_csv(tmp_path / "d.csv", X, y)
    model = tmp_path / "m.npz"
    assert main("train", "--data", data, "--seed", 5, "--test-split", 0.3, "-o", model, *FAST) == 0
    trained = capsys.readouterr().out
    test_line = next(x for x in trained.splitlines() if x.startswith("test accuracy"))
    assert main("evaluate", model, "--subset", "test") == 0
    out = capsys.readouterr().out
    assert out.startswith("45 samples: ")  # 30 % of 150, not the default 20 %
    acc = test_line.split()[2].rstrip(",")
    assert f"accuracy {acc}" in out
    rec = config(model)["data"]
    assert rec["seed"] == 5 and rec["test_split"] == 0.3 and rec["source"] == str(data)
    assert rec["classes"] == [0, 1, 2] and rec["rows"] == 150 and rec["fingerprint"]


def test_evaluate_refuses_other_data_and_unrecorded_splits(tmp_path, capsys):
    X, y = blobs()
    data = write_csv(tmp_path / "d.csv", X, y)
    model = tmp_path / "m.npz"
    assert main("train", "--data", data, "-o", model, *FAST) == 0
    other = write_csv(tmp_path / "other.csv", X[:140], y[:140])
    assert main("evaluate", model, "--subset", "test", "--data", other) == 1
    assert "not the data" in capsys.readouterr().err
    assert main("evaluate", model, "--subset", "test", "--seed", 9) == 1
    assert "differs from the 0 the model was trained with" in capsys.readouterr().err
    bpgpu.MLP([4, 8, 3], backend="numpy").save(tmp_path / "py.npz")  # no record
    assert main("evaluate", tmp_path / "py.npz", "--subset", "test", "--data", data) == 1
    assert "does not record the data it was trained on" in capsys.readouterr().err
    assert main("evaluate", tmp_path / "py.npz", "--data", data) == 0  # --subset all works


def test_labels_that_are_not_0_to_k_minus_1_keep_their_names(tmp_path, capsys):
    """Labels 1..3 get 3 outputs (not 4), text labels work, and predict answers with the
    labels the data used."""
    X, y = blobs()
    for labels, classes in ((y + 1, [1, 2, 3]), (np.array(["cat", "dog", "emu"])[y], None)):
        data = write_csv(tmp_path / "d.csv", X, labels, header=["a", "b", "c", "d", "kind"])
        model = tmp_path / "m.npz"
        assert main("train", "--data", data, "-o", model, *FAST, "--epochs", "30") == 0
        out = capsys.readouterr().out
        assert "3 classes found in all the data" in out and "MLP([4, 16, 3]" in out
        np.save(tmp_path / "x.npy", X[:10])
        assert main("predict", model, tmp_path / "x.npy") == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == "kind" and len(lines) == 11  # the CSV header's name for them
        want = [str(v) for v in labels[:10]]
        assert sum(a == b for a, b in zip(lines[1:], want)) >= 8
        if classes:
            assert config(model)["data"]["classes"] == classes
        # the network's classes are the recorded ones, and it answers with them
        assert config(model)["classes"] == config(model)["data"]["classes"]
        assert [str(v) for v in bpgpu.load(model).classify(X[:10])] == lines[1:]
        # the training CSV itself, label column (text, too) and all: it is left out
        assert main("predict", model, data) == 0
        out, err = capsys.readouterr()
        assert out.splitlines()[1:11] == lines[1:]
        assert "column 5 (kind), the label column of the model's training CSV, is left out" in err


def test_a_class_seen_only_in_the_test_files_is_still_a_class(tmp_path, capsys):
    """An MNIST folder whose train files lack class 3: the network still gets 4 outputs."""
    import gzip

    def idx(path, a):
        head = bytes([0, 0, 0x08, a.ndim]) + np.array(a.shape, ">u4").tobytes()
        with gzip.open(path, "wb") as f:
            f.write(head + a.astype(np.uint8).tobytes())

    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 3, size=60), np.array([3, 0, 1, 2] * 5)
    for kind, y in (("train", y_train), ("t10k", y_test)):
        X = rng.integers(0, 255, size=(len(y), 2, 2)) // 4 + 40 * y[:, None, None]
        idx(tmp_path / f"{kind}-images-idx3-ubyte.gz", X)
        idx(tmp_path / f"{kind}-labels-idx1-ubyte.gz", y)
    assert main("train", "--data", tmp_path, "-o", tmp_path / "m.npz", *FAST) == 0
    out = capsys.readouterr().out
    assert "4 classes found in all the data (0, 1, 2, 3)" in out and "MLP([4, 16, 4]" in out


def test_regression_and_binary_classification_from_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    target = X @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=200)
    data = write_csv(tmp_path / "r.csv", X, target)
    assert (
        main("train", "--data", data, "-o", tmp_path / "r.npz", "--epochs", "30", "--no-plot") == 0
    )
    out = capsys.readouterr().out
    assert "regression: 1 numeric target" in out and "activations=[relu, identity]" in out
    r2 = float(next(x for x in out.splitlines() if "R^2" in x).split("R^2")[1])
    assert r2 > 0.8, out
    # predict answers a regression model with its outputs (it printed 0/1 "labels")
    np.save(tmp_path / "in.npy", X[:5])
    assert main("predict", tmp_path / "r.npz", tmp_path / "in.npy") == 0
    lines = capsys.readouterr().out.split()
    got = np.array([float(v) for v in lines[1:]])
    want = bpgpu.to_numpy(bpgpu.load(tmp_path / "r.npz").predict(X[:5]))[:, 0]
    assert lines[0] == "output_1" and np.allclose(got, want, rtol=1e-6), lines
    assert main("predict", tmp_path / "r.npz", tmp_path / "in.npy", "-o", tmp_path / "p.npy") == 0
    assert "5 outputs written" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(tmp_path / "p.npy")[:, 0], got, rtol=1e-6)
    # a header names the predictions as the training CSV named its label column
    named = write_csv(tmp_path / "n.csv", X, target, header=["a", "b", "c", '"price, $"'])
    assert main("train", "--data", named, "-o", tmp_path / "n.npz", *FAST) == 0
    assert config(tmp_path / "n.npz")["data"]["label_name"] == "price, $"
    capsys.readouterr()
    assert main("predict", tmp_path / "n.npz", tmp_path / "in.npy") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == '"price, $"' and len(out.splitlines()) == 6, out
    y = (X[:, 0] > 0).astype(int)
    data = write_csv(tmp_path / "b.csv", X, y)
    args = ["--data", data, "-o", tmp_path / "b.npz", "--output-activation", "sigmoid"]
    assert main("train", *args, "--epochs", "20", "--no-plot") == 0
    out = capsys.readouterr().out
    assert "MLP([3, 256, 1], activations=[relu, sigmoid], cost='cross_entropy'" in out
    acc = float(next(x for x in out.splitlines() if x.startswith("test accuracy")).split()[2][:-1])
    assert acc > 0.85
    np.save(tmp_path / "in.npy", X[:5])
    assert main("predict", tmp_path / "b.npz", tmp_path / "in.npy") == 0
    assert capsys.readouterr().out.split()[0] == "label"  # the CSV had no header
    X3, y3 = blobs()
    data3 = write_csv(tmp_path / "t.csv", X3, y3)  # three classes: a sigmoid unit each
    assert main("train", "--data", data3, "--output-activation", "sigmoid", *FAST) == 0
    assert "one sigmoid unit per class" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["train", "--batch-size", "0"], 2, "must be a positive integer, got 0"),
        (["train", "--epochs", "-1"], 2, "must be a positive integer"),
        (["train", "--val-split", "1.5"], 2, "must be in [0, 1)"),
        (["train", "--lr", "0"], 2, "must be > 0"),
        (["train", "--hidden", "16,,8"], 2, "an empty layer size in '16,,8'"),
        (["train", "--no-checkpoint", "--checkpoint", "c.npz"], 2, "contradict each other"),
        (["train", "--no-plot", "--plot", "p.png"], 2, "contradict each other"),
        (["train", "--data", "{csv}", "--x-key", "A"], 2, "--x-key is for .npz files"),
        (["train", "--data", "{csv}", "--label-column", "9"], 1, "label column 9 is out of range"),
        (["evaluate", "{model}", "--label-column", "1"], 2, "--label-column is for CSV files"),
        (["predict", "{model}", "{csv}", "-o", "out.txt"], 1, "must end in .npy or .csv"),
        (["predict", "{model}", "{csv}", "--x-key", "A"], 2, "--x-key is for .npz files"),
        (["predict", "{model}", "{model}.json"], 1, "pass a .npy, an .npz or a CSV file"),
        (["train", "--data", "{csv}", "--label-column", "kind"], 1, "no header line to find"),
        # the file first, not Python's "[Errno 2] No such file or directory: 'x.csv'"
        (["predict", "{model}", "nope.csv"], 1, "error: nope.csv: no such file or directory"),
        (["train", "--data", "nope.csv"], 1, "error: nope.csv: no such file or directory"),
        # a regression model on text labels: said so, not "could not convert string"
        (["evaluate", "{reg}", "--data", "{text}"], 1, "a regression takes numeric targets"),
        # the command's name and its --help, not bpgpu's
        (["check", "--dtypes", "float32"], 2, "bpgpu check: error: unrecognized arguments: "),
        (["train", "--bogus"], 2, "unrecognized arguments: --bogus (see bpgpu train --help)"),
        (["bench", "--workloads", "huge"], 2, "bpgpu bench: error: unknown workload 'huge'"),
    ],
)
def test_user_errors_are_one_line_and_exit_2_or_1(args, code, message, tmp_path):
    X, y = blobs(n=30)
    csv = write_csv(tmp_path / "d.csv", X, y)
    model = tmp_path / "m.npz"
    bpgpu.MLP([4, 5, 3], backend="numpy").save(model)
    reg, text = tmp_path / "r.npz", tmp_path / "t.csv"
    if "{reg}" in args:  # a regression trained from the command line, and text labels
        assert (
            main("train", "--data", write_csv(tmp_path / "n.csv", X, X[:, 0]), "-o", reg, *FAST)
            == 0
        )
        write_csv(text, X, np.array(["a", "b", "c"])[y])
    args = [a.format(csv=csv, model=model, reg=reg, text=text) for a in args]
    out = run(*args)
    assert out.returncode == code, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "epoch " not in out.stdout  # refused before any training


def test_resume_refuses_options_that_contradict_the_checkpoint(tmp_path, capsys):
    X, y = blobs()
    data = write_csv(tmp_path / "d.csv", X, y)
    ckpt, model = tmp_path / "c.npz", tmp_path / "m.npz"
    assert main("train", "--data", data, "--checkpoint", ckpt, "-o", model, *FAST) == 0
    out = capsys.readouterr().out
    assert f"checkpoint kept at {ckpt}" in out
    rc = main("train", "--resume", model, "--data", data, "--epochs", 5, "--no-plot")
    assert rc == 1 and "m.npz: this is a model file, not a checkpoint" in capsys.readouterr().err
    for extra, message in (
        (["--batch-size", "8"], "batch_size=8 differs from the checkpoint's 32"),
        (["--hidden", "32"], "--hidden [32] differs from the checkpoint's network"),
        (["--seed", "3"], "differs from the 0 the model was trained with"),
        (["--optimizer", "sgd"], "differs from the checkpoint's"),
    ):
        rc = main(
            "train",
            "--resume",
            ckpt,
            "--data",
            data,
            "--epochs",
            5,
            "-o",
            model,
            "--no-plot",
            *extra,
        )
        assert rc == 1 and message in capsys.readouterr().err, extra
    assert (
        main("train", "--resume", ckpt, "--data", data, "--epochs", 5, "-o", model, "--no-plot")
        == 0
    )
    out = capsys.readouterr().out
    assert "trained 2 epochs" in out and "epoch   4/5" in out and "epoch   3/5" not in out


def test_the_default_checkpoint_is_removed_after_a_finished_run(tmp_path, capsys):
    X, y = blobs()
    data = write_csv(tmp_path / "d.csv", X, y)
    assert main("train", "--data", data, "-o", tmp_path / "m.npz", *FAST) == 0
    assert not (tmp_path / "m.ckpt.npz").exists() and (tmp_path / "m.npz").exists()
    capsys.readouterr()


def test_early_stopping_says_whose_weights_it_kept(tmp_path, capsys):
    X, y = blobs(n=300)
    data = write_csv(tmp_path / "d.csv", X, y)
    args = ["--data", data, "-o", tmp_path / "m.npz", "--no-plot", "--patience", "2"]
    assert main("train", *args, "--epochs", "200", "--lr", "0.05", "--optimizer", "sgd") == 0
    out = capsys.readouterr().out
    assert "early stopping after epoch" in out and "kept the weights of epoch" in out


def test_output_paths_are_checked_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main("train", "-o", blocker / "m.npz", *FAST) == 1
    captured = capsys.readouterr()
    assert f"model file {blocker / 'm.npz'}" in captured.err and "epoch " not in captured.out
    assert (
        main("train", "--plot", blocker / "p.png", "-o", tmp_path / "m.npz", "--epochs", "1") == 1
    )
    assert "plot" in capsys.readouterr().err and not (tmp_path / "m.npz").exists()
    new = tmp_path / "new" / "folder" / "m.npz"
    assert main("train", "-o", new, *FAST) == 0 and new.exists()  # a missing folder is made
    capsys.readouterr()


def test_version_verbose_after_the_command_and_help_with_every_default(capsys):
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"bpgpu {bpgpu.__version__}"
    out = run("backends", "-v")
    assert out.returncode == 0
    helptext = run("train", "--help").stdout
    for option, default in (("--epochs", "50"), ("--out", "model.npz"), ("--task", "auto")):
        assert option in helptext and f"(default: {default})" in helptext, option
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"{name} {action.option_strings} has no help"


def test_a_memory_error_is_never_a_bare_error_line(monkeypatch, capsys):
    from bpgpu.cli import parser

    def boom(args):
        raise MemoryError()

    monkeypatch.setattr(parser, "cmd_backends", boom)
    assert main("backends") == 1
    err = capsys.readouterr().err
    assert "out of memory" in err and err.strip() != "bpgpu backends: error:"


BAD_FILES = {
    "NaN": ("d.csv", "1,2,3,4,0\nnan,2,3,4,1\n5,6,7,8,2\n", "NaN or inf"),
    "inf": ("d.csv", "1,2,3,4,0\ninf,2,3,4,1\n5,6,7,8,2\n", "NaN or inf"),
    "empty": ("d.csv", "", "no data"),
    "text feature": ("d.csv", "1,2,3,4,0\n1,x,3,4,1\n", "row 2, column 2 holds 'x'"),
    "short row": ("d.csv", "1,2,3,4,0\n1,2,3,1\n", "row 2 has 4 fields"),
    "empty field": ("d.csv", "1,2,3,4,0\n1,,3,4,1\n", "row 2, column 2 is empty"),
    "wrong width": ("d.csv", "1,2,3,0\n4,5,6,1\n", "features, the network expects 4"),
    "not an npz": ("d.npz", "X,y\n1,2\n", "is not an .npz file"),
}


@pytest.mark.parametrize("entry", ["train", "evaluate", "predict"])
@pytest.mark.parametrize("bad", list(BAD_FILES))
def test_the_command_line_refuses_bad_data_files_in_one_line_and_writes_nothing(
    entry, bad, tmp_path
):
    """The reliability matrix, for the command line: every entry that reads data x
    every kind of bad file -> exit 1, one line naming the problem, no file written."""
    name, text, message = BAD_FILES[bad]
    path = tmp_path / name
    path.write_text(text)
    model = tmp_path / "m.npz"
    bpgpu.MLP([4, 5, 3], backend="numpy").save(model)
    before = sorted(p.name for p in tmp_path.iterdir())
    if entry == "train":
        if bad == "wrong width":
            pytest.skip("train builds the network from the data: any width is right")
        args = ["train", "--data", path, "-o", tmp_path / "out.npz", "--epochs", "1"]
    elif entry == "evaluate":
        if bad == "wrong width":
            message = "3 features, the network expects 4"
        args = ["evaluate", model, "--data", path]
    else:
        if name.endswith(".npz"):
            pytest.skip("predict reads .npy and .csv inputs")
        if bad == "wrong width":
            message = "4 features, the network expects 4"
        args = ["predict", model, path, "-o", tmp_path / "p.csv"]
        text_rows = [r for r in text.splitlines() if r]
        if bad == "wrong width":  # the label-less input of predict: 4 columns fit
            path.write_text("1,2,3\n4,5,6\n")
            message = "3 features, the network expects 4"
        elif text_rows and bad in ("NaN", "inf"):
            path.write_text("\n".join(r.rsplit(",", 1)[0] for r in text_rows) + "\n")
    out = run(*args)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert message in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_classification_of_numbers_with_fractions_is_refused(tmp_path, capsys):
    """--task classification on prices made one class per distinct price (300 of them)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    data = write_csv(tmp_path / "r.csv", X, X @ np.array([1.0, 2.0, 3.0]))
    args = ["train", "--data", data, "--task", "classification", "-o", tmp_path / "m.npz"]
    assert main(*args, *FAST) == 1
    err = capsys.readouterr().err
    assert "classification needs class labels (integers or names)" in err
    assert "use --task regression" in err and not (tmp_path / "m.npz").exists()
    # whole numbers written as 1.0, 2.0 are labels
    data = write_csv(tmp_path / "c.csv", X, [f"{v}.0" for v in (X[:, 0] > 0).astype(int)])
    assert main("train", "--data", data, "-o", tmp_path / "m.npz", *FAST) == 0
    assert "classification: 2 classes found in all the data (0, 1)" in capsys.readouterr().out


def test_one_hot_targets_are_classes_as_their_labels_are(tmp_path, capsys):
    """An .npz whose y is one-hot rows (as Keras users keep them) trained a 10-target
    regression; now the classification its labels give, epoch for epoch."""
    X, y = blobs()
    np.savez(tmp_path / "labels.npz", X=X, y=y)
    np.savez(tmp_path / "onehot.npz", X=X, y=np.eye(3)[y])  # floats, as np.eye gives
    lines = {}
    for name in ("labels", "onehot"):
        args = ["--data", tmp_path / f"{name}.npz", "-o", tmp_path / f"{name}.m.npz"]
        assert main("train", *args, *FAST) == 0
        lines[name] = capsys.readouterr().out.splitlines()
    assert lines["onehot"][0].startswith("classification: 3 classes, one per column")
    epochs = [[x for x in lines[k] if x.startswith("epoch ")] for k in lines]
    assert epochs[0] and [x[:-6] for x in epochs[0]] == [x[:-6] for x in epochs[1]]  # not times
    assert main("evaluate", tmp_path / "onehot.m.npz", "--subset", "test") == 0
    assert "accuracy" in capsys.readouterr().out
    args = ["--data", tmp_path / "onehot.npz", "--task", "regression", "-o", tmp_path / "r.npz"]
    assert main("train", *args, *FAST) == 0  # asked for: numeric targets stay numbers
    assert capsys.readouterr().out.startswith("regression: 3 numeric target(s)")


def test_csv_files_as_they_come_named_label_column_and_predict_inputs(tmp_path, capsys):
    """A gzipped CSV, its label column named by the header; predict reads a .tsv, an .npz
    and the compressed training file itself, leaving its label column out by name."""
    import gzip

    X, y = blobs()
    kinds = np.array(["ant", "bee", "cat"])[y]
    text = "kind,a,b,c,d\n" + "".join(
        f"{k},{','.join(f'{v:.6g}' for v in x)}\n" for k, x in zip(kinds, X)
    )
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(text.encode()))
    model = tmp_path / "m.npz"
    args = ["--data", tmp_path / "d.csv.gz", "--label-column", "kind", "-o", model]
    assert main("train", *args, *FAST, "--epochs", "20") == 0
    data = config(model)["data"]
    assert data["label_column"] == 0 and data["label_name"] == "kind" and data["format"] == "csv"
    assert main("evaluate", model, "--subset", "test") == 0  # the record reads the file again
    net = bpgpu.load(model)
    assert list(net.classes) == ["ant", "bee", "cat"]  # the network answers with the labels
    want = list(net.classify(X))
    capsys.readouterr()
    # the training file (its label column, by name, left out); columns moved: still by name
    moved = "a,b,kind,c,d\n" + "".join(
        f"{','.join(f'{v:.6g}' for v in x[:2])},{k},{','.join(f'{v:.6g}' for v in x[2:])}\n"
        for k, x in zip(kinds, X)
    )
    (tmp_path / "moved.csv").write_text(moved)
    # evaluate reads another file as the training file was read: its label column by name
    assert main("evaluate", model, "--data", tmp_path / "moved.csv") == 0
    assert "150 samples: accuracy" in capsys.readouterr().out
    np.savetxt(tmp_path / "x.tsv", X, delimiter="\t", fmt="%.6g")
    np.savez(tmp_path / "x.npz", X=X.astype(np.float32), other=np.zeros(3))
    np.savez(tmp_path / "f.npz", features=X)
    for path, extra, dropped in [
        (tmp_path / "d.csv.gz", [], "column 1 (kind)"),
        (tmp_path / "moved.csv", [], "column 3 (kind)"),
        (tmp_path / "x.tsv", [], None),
        (tmp_path / "x.npz", [], None),
        (tmp_path / "f.npz", ["--x-key", "features"], None),
    ]:
        assert main("predict", model, path, *extra) == 0
        out, err = capsys.readouterr()
        assert out.split() == ["kind", *want], path
        assert (dropped in err) if dropped else not err, err


def test_multilabel_targets_train_a_sigmoid_unit_per_label(tmp_path, capsys):
    """0/1 rows that are not one-hot (a sample tagged with any number of labels) trained
    a 4-target regression; now a sigmoid unit per column, scored and predicted per row."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6))
    Y = (X[:, :4] + 0.3 * X[:, 4:5] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=X, y=Y)
    model = tmp_path / "m.npz"
    assert main("train", "--data", tmp_path / "d.npz", "-o", model, *FAST, "--epochs", "30") == 0
    out = capsys.readouterr().out
    assert "multilabel: 4 labels, one per column of the 0/1 targets (0..3)" in out, out
    assert "activations=[relu, sigmoid], cost='cross_entropy'" in out
    assert config(model)["data"]["task"] == "multilabel"
    net = bpgpu.load(model)
    tags = bpgpu.to_numpy(net.classify(X, multilabel=True))
    assert main("evaluate", model, "--data", tmp_path / "d.npz") == 0
    line = capsys.readouterr().out
    want = np.mean(np.all(tags == Y, axis=1))
    assert f"accuracy {want:.4f}" in line and want > 0.3, (line, want)  # chance: 1/16
    np.save(tmp_path / "x.npy", X[:20])
    assert main("predict", model, tmp_path / "x.npy") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "label_0,label_1,label_2,label_3"
    got = np.array([[int(v) for v in row.split(",")] for row in lines[1:]])
    np.testing.assert_array_equal(got, tags[:20])
    # asked for: one-hot rows as labels of their own; refused: one label per row, softmax
    np.savez(tmp_path / "h.npz", X=X, y=np.eye(3, dtype=int)[Y[:, 0] + Y[:, 1]])
    args = ["--data", tmp_path / "h.npz", "-o", tmp_path / "h_m.npz", *FAST]
    assert main("train", *args, "--task", "multilabel") == 0
    assert "multilabel: 3 labels" in capsys.readouterr().out
    for extra, message in [
        (["--task", "classification"], "pass --task multilabel for 0/1 rows"),
        (["--output-activation", "softmax"], "multi-label takes a sigmoid unit per label"),
    ]:
        assert (
            main("train", "--data", tmp_path / "d.npz", "-o", tmp_path / "n.npz", *FAST, *extra)
            == 1
        )
        assert message in capsys.readouterr().err


def test_class_weight_from_the_command_line(tmp_path, capsys):
    """--class-weight names classes as the data name them, is recorded, resumes with
    its checkpoint and is refused where it cannot mean anything."""
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300, int), np.ones(30, int)]
    X = rng.normal(size=(330, 3)) + 1.2 * y[:, None]
    data = write_csv(tmp_path / "d.csv", X, np.where(y == 1, "fraud", "ok"))
    base = ["--data", data, *FAST, "--epochs", "10", "--no-checkpoint"]
    assert main("train", *base, "-o", tmp_path / "plain.npz") == 0
    assert main("train", *base, "-o", tmp_path / "w.npz", "--class-weight", "fraud=10") == 0
    assert config(tmp_path / "w.npz")["data"]["class_weight"] == "fraud=10"
    plain, weighed = bpgpu.load(tmp_path / "plain.npz"), bpgpu.load(tmp_path / "w.npz")
    p = bpgpu.to_numpy(plain.predict(X))[:, list(plain.data_info["classes"]).index("fraud")]
    q = bpgpu.to_numpy(weighed.predict(X))[:, list(weighed.data_info["classes"]).index("fraud")]
    assert q.mean() > p.mean() + 0.05  # the rare class weighs more: predicted more often
    ck = tmp_path / "c.npz"
    args = ["--data", data, "--hidden", "16", "--no-plot", "--checkpoint", ck]
    assert (
        main(
            "train", *args, "--epochs", "2", "-o", tmp_path / "a.npz", "--class-weight", "balanced"
        )
        == 0
    )
    assert (
        main("train", "--resume", ck, "--epochs", "3", "--no-plot", "-o", tmp_path / "a.npz") == 0
    )
    capsys.readouterr()
    for extra, message in [
        (
            ["--resume", ck, "--epochs", "4", "--class-weight", "ok=2"],
            "differs from the checkpoint's (balanced)",
        ),
        (
            ["--data", data, "--class-weight", "fruad=2"],
            "names class 'fruad'; the classes are fraud, ok",
        ),
        (["--data", data, "--class-weight", "fraud"], "takes 'balanced' or NAME=WEIGHT"),
        (
            ["--data", write_csv(tmp_path / "r.csv", X, X[:, 0]), "--class-weight", "balanced"],
            "this is a regression task",
        ),
    ]:
        assert main("train", *extra, "--no-plot", "-o", tmp_path / "x.npz") == 2
        assert message in capsys.readouterr().err


def _measurement_first(tmp_path, rows=178, k=3, seed=0):
    """A CSV whose class label is the first column and whose last column, where the label
    is looked for by default, holds whole numbers nearly as many as the rows (the wine
    data's proline)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=rows)
    X = rng.normal(size=(rows, 4)) + 3 * np.eye(k, 4)[y]
    measured = rng.choice(np.arange(278, 1680), size=rows, replace=True)
    table = np.column_stack([y, X, measured])
    path = tmp_path / "first.csv"
    path.write_text("\n".join(",".join(f"{v:g}" for v in row) for row in table) + "\n")
    return path


def test_a_label_column_that_is_a_measurement_is_refused_pointing_to_the_fix(tmp_path, capsys):
    data = _measurement_first(tmp_path)
    assert main("train", "--data", data, "-o", tmp_path / "m.npz", *FAST) == 1
    out, err = capsys.readouterr()
    assert "looks like a measurement" in err and "distinct whole numbers in 178 rows" in err
    assert "--label-column" in err and "--task regression" in err and err.count("\n") == 1
    assert "epoch" not in out and not (tmp_path / "m.npz").exists()
    # the fix it names works; and --task says what the user meant
    assert (
        main("train", "--data", data, "--label-column", "0", "-o", tmp_path / "a.npz", *FAST) == 0
    )
    assert "3 classes found" in capsys.readouterr().out
    assert (
        main("train", "--data", data, "--task", "regression", "-o", tmp_path / "r.npz", *FAST) == 0
    )
    assert (
        main("train", "--data", data, "--task", "classification", "-o", tmp_path / "c.npz", *FAST)
        == 0
    )


def test_many_classes_with_rows_enough_each_are_classes(tmp_path, capsys):
    X, y = blobs(n=300, k=30, d=32)  # 30 classes, 10 rows each
    data = write_csv(tmp_path / "many.csv", X, y)
    assert main("train", "--data", data, "-o", tmp_path / "m.npz", *FAST) == 0
    assert "30 classes found" in capsys.readouterr().out


OUTPUTS = [a for a in bpgpu.activations.ACTIVATIONS if a not in ("softmax",)]


@pytest.mark.filterwarnings("ignore:binary_step")
@pytest.mark.parametrize("output", OUTPUTS)
def test_every_output_activation_the_cli_lists_trains_one_unit_per_class(tmp_path, capsys, output):
    """The seed's network and Nielsen's: a unit per class on one-hot targets, the class
    the largest output's; three classes, so never the one-unit binary case."""
    X, y = blobs(n=300)
    data = write_csv(tmp_path / "t.csv", X, y)
    cost = [] if output == "sigmoid" else ["--cost", "quadratic"]
    args = ["--data", data, "--output-activation", output, *cost, "-o", tmp_path / "m.npz"]
    assert (
        main("train", *args, "--epochs", "40", "--lr", "0.01", "--no-plot", "--hidden", "16") == 0
    )
    out = capsys.readouterr().out
    assert f"one {output} unit per class" in out and "16, 3]" in out
    acc = float(next(x for x in out.splitlines() if x.startswith("test accuracy")).split()[2][:-1])
    # three classes, chance is 1/3; a step learns nothing by backpropagation, and a ReLU
    # output unit that goes dead (negative on every row) stops learning
    least = {"binary_step": 0.0, "relu": 0.5}.get(output, 0.8)
    assert acc > least, (output, acc)
    np.save(tmp_path / "in.npy", X[:20])
    assert main("predict", tmp_path / "m.npz", tmp_path / "in.npy") == 0
    labels = capsys.readouterr().out.split()[1:]
    assert set(labels) <= {"0", "1", "2"} and len(labels) == 20


def test_sigmoid_with_the_quadratic_cost_on_the_digits_the_seeds_network(tmp_path, capsys):
    args = ["--output-activation", "sigmoid", "--cost", "quadratic", "-o", tmp_path / "m.npz"]
    assert main("train", *args, "--epochs", "10", "--no-plot") == 0
    out = capsys.readouterr().out
    assert "activations=[relu, sigmoid], cost='quadratic'" in out and "256, 10]" in out
    acc = float(next(x for x in out.splitlines() if x.startswith("test accuracy")).split()[2][:-1])
    assert acc > 0.9


def _typed_options():
    """``(command, option, positionals)`` for every option of every command that
    converts its value (``positionals``: placeholders for the command's arguments)."""
    import argparse

    from bpgpu.cli.parser import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, p in sub.choices.items():
        places = tuple("m.npz" for a in p._actions if not a.option_strings and a.required)
        for action in p._actions:
            if action.type is not None and action.option_strings:
                yield name, action.option_strings[-1], places


# options whose values are names or numbers that may be negative: a value they take
TAKES_ANY = {"--label-column"}  # a header name, or a column counted from either end


@pytest.mark.parametrize("command, option, places", sorted(set(_typed_options())))
@pytest.mark.parametrize("value", ["-3", "x", "1e999", "nan"])
def test_every_refused_option_value_names_its_option(command, option, places, value, capsys):
    """A value an option refuses is refused while parsing, by the option's name (a
    negative seed used to reach numpy.random and come back as 'expected non-negative
    integer', naming nothing)."""
    from bpgpu.cli.parser import build_parser

    try:
        build_parser().parse_args([command, *places, f"{option}={value}"])
    except SystemExit as e:
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert e.code == 2 and f"argument {option}" in err, err
    else:
        assert option in TAKES_ANY, f"{command} {option}={value} was accepted"


def test_a_negative_seed_is_refused_by_name():
    for command in ("train", "check"):
        out = run(command, "--seed", "-3")
        assert out.returncode == 2 and "argument --seed: must be an integer >= 0" in out.stderr


@pytest.mark.parametrize(
    "names, extra, want",
    [
        (["cat", "dog", "emu"], [], "cat,dog,emu"),
        (None, [], "0,1,2"),  # integer labels: their numbers
        (["no", "yes"], ["--output-activation", "sigmoid"], "yes"),  # one unit: P(yes)
        (['big, "red"', "small"], [], '"big, ""red""",small'),  # quoted as CSV fields
    ],
)
def test_predict_outputs_are_named_by_the_classes(names, extra, want, tmp_path, capsys):
    X, y = blobs(k=len(names) if names else 3)
    labels = np.array(names, dtype=object)[y] if names else y
    rows = (
        [
            ",".join([*(f"{v:.6g}" for v in x), '"' + str(t).replace('"', '""') + '"'])
            for x, t in zip(X, labels)
        ]
        if names
        else None
    )
    data = tmp_path / "d.csv"
    if rows:
        data.write_text("\n".join(rows) + "\n")
    else:
        write_csv(data, X, labels)
    assert main("train", "--data", data, "-o", tmp_path / "m.npz", *FAST, *extra) == 0
    np.save(tmp_path / "in.npy", X[:4])
    capsys.readouterr()
    assert main("predict", tmp_path / "m.npz", tmp_path / "in.npy", "--outputs") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == want and len(lines) == 5, lines
