"""The bpgpu command end to end, in subprocesses: train, evaluate, predict, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from bpgpu import cli, datasets


def run(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "bpgpu", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "BPGPU_BACKEND": "numpy", **(env or {})},
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    out = run("train", "--epochs", "2", "-o", str(d / "m.npz"), "--checkpoint", str(d / "c.npz"))
    assert out.returncode == 0, out.stderr
    return d, out


def test_train_prints_epochs_and_summary_and_saves(trained):
    d, out = trained
    lines = out.stdout.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert any(line.startswith("test accuracy ") for line in lines)
    assert any("samples/s" in line for line in lines)
    assert "backend numpy" in out.stdout
    assert (d / "m.npz").exists() and (d / "c.npz").exists() and (d / "m.png").exists()
    assert out.stderr == ""  # no progress bar when stderr is not a terminal
    acc = float(next(x for x in lines if x.startswith("test accuracy")).split()[2].rstrip(","))
    assert acc > 0.8  # two epochs of Adam on the digits


def test_resume_continues_from_the_checkpoint(trained):
    d, _ = trained
    out = run(
        "train", "--epochs", "3", "--resume", str(d / "c.npz"), "-o", str(d / "r.npz"), "--no-plot"
    )
    assert out.returncode == 0, out.stderr
    assert "epoch   3/3" in out.stdout and "epoch   1/3" not in out.stdout
    # the same command again (the checkpoint is at epoch 3 now): its result, no epoch
    out = run(
        "train", "--epochs", "3", "--resume", str(d / "c.npz"), "-o", str(d / "s.npz"), "--no-plot"
    )
    assert out.returncode == 0, out.stderr
    assert "nothing to train: the checkpoint's fit was finished (epoch 3)" in out.stdout
    assert not any(line.startswith("epoch ") for line in out.stdout.splitlines())


def test_evaluate_and_predict(trained, tmp_path):
    d, _ = trained
    out = run("evaluate", str(d / "m.npz"), "--subset", "test")
    assert out.returncode == 0 and "359 samples" in out.stdout
    X, y = datasets.load_digits()
    np.save(tmp_path / "x.npy", X[:20])
    out = run("predict", str(d / "m.npz"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "p.csv"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "label"
    pred = np.loadtxt(tmp_path / "p.csv", dtype=int, skiprows=1)
    assert pred.shape == (20,) and (pred == y[:20]).mean() > 0.7
    out = run(
        "predict",
        str(d / "m.npz"),
        str(tmp_path / "x.npy"),
        "-o",
        str(tmp_path / "p.npy"),
        "--outputs",
    )
    probs = np.load(tmp_path / "p.npy")
    assert probs.shape == (20, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    np.savetxt(tmp_path / "x.csv", X[:5], delimiter=",", header="pixels", comments="")
    out = run("predict", str(d / "m.npz"), str(tmp_path / "x.csv"), "-o", str(tmp_path / "q.npy"))
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "q.npy"), pred[:5])


def test_failures_exit_1_with_a_message(trained, tmp_path):
    d, _ = trained
    (tmp_path / "x.npy").write_bytes(b"")
    np.save(tmp_path / "wide.npy", np.ones((2, 65)))
    out = run(
        "predict", str(d / "m.npz"), str(tmp_path / "wide.npy"), "-o", str(tmp_path / "o.npy")
    )
    assert out.returncode == 1 and "65 features, the network expects 64" in out.stderr
    assert not (tmp_path / "o.npy").exists()
    out = run("evaluate", str(tmp_path / "missing.npz"))
    assert out.returncode == 1 and "no such model file" in out.stderr
    out = run("train", "--backend", "cupy:7", "--epochs", "1", "-o", str(tmp_path / "m.npz"))
    assert out.returncode == 1 and "cupy" in out.stderr


def test_usage_errors_exit_2():
    assert run("train", "--hidden", "a,b").returncode == 2
    assert run("train", "--optimizer", "rmsprop").returncode == 2
    assert run("predict").returncode == 2


@pytest.mark.parametrize("sub", ["train", "evaluate", "predict", "check", "backends", "bench"])
def test_help(sub):
    out = run(sub, "--help")
    assert out.returncode == 0 and f"usage: bpgpu {sub}" in out.stdout


def test_without_matplotlib_train_says_so_and_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setenv("BPGPU_BACKEND", "numpy")
    rc = cli.main(["train", "--epochs", "1", "-o", str(tmp_path / "m.npz")])
    assert rc == 0
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert (tmp_path / "m.npz").exists() and not (tmp_path / "m.png").exists()


def test_train_on_a_csv_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=60)
    X = rng.normal(size=(60, 3)) + 3 * y[:, None]
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), delimiter=",", header="a,b,c,label")
    rc = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / "d.csv"),
            "--epochs",
            "5",
            "--no-plot",
            "--backend",
            "numpy",
            "-o",
            str(tmp_path / "m.npz"),
        ]
    )
    assert rc == 0 and "MLP([3, 256, 2]" in capsys.readouterr().out


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """`bpgpu train | head -1`: the pipe closes early; no error line, no Python traceback
    at exit, SIGPIPE's status."""
    args = ["train", "--epochs", "500", "--hidden", "8", "--no-plot", "-o", str(tmp_path / "m.npz")]
    p = subprocess.Popen(
        [sys.executable, "-m", "bpgpu", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "BPGPU_BACKEND": "numpy"},
    )
    assert p.stdout.readline().startswith(b"classification: 10 classes")
    p.stdout.close()  # as head does after its lines; the next epoch's line meets it
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 141 and err == "", err
