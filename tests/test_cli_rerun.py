"""No work lost on a re-run of ``bpgpu train``: a checkpoint in the run's way is refused
with both ways on (resume it, or --restart), and a replaced model file is named with
what it held."""

from __future__ import annotations

import signal

import numpy as np
import pytest

import bpgpu
from bpgpu.cli import main

TRAIN = ["train", "--epochs", "3", "--no-plot", "--backend", "numpy"]


def _interrupted_run(path, at=2, of=10):
    """``bpgpu train`` with the checkpoint ``path``, Ctrl-C'd (a real SIGINT) in epoch
    ``at + 1`` of ``of``: the checkpoint holds epoch ``at``."""
    from bpgpu.cli import commands

    real = commands.Progress.on_epoch_end

    def end(self, net, epoch, logs):
        if epoch == at:
            signal.raise_signal(signal.SIGINT)  # fit stops after the next batch
        return real(self, net, epoch, logs)

    args = ["--epochs", str(of), "-o", str(path) + ".model.npz", "--checkpoint", str(path)]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(commands.Progress, "on_epoch_end", end)
        assert main([*TRAIN[:1], *TRAIN[3:], *args]) == 130


def test_an_unfinished_checkpoint_is_refused_with_both_ways_on_and_kept(tmp_path, capsys):
    ckpt = tmp_path / "big.ckpt.npz"
    _interrupted_run(ckpt)
    capsys.readouterr()
    before = ckpt.read_bytes()
    rc = main([*TRAIN, "-o", str(tmp_path / "big.npz")])
    out, err = capsys.readouterr()
    assert rc == 1 and "epoch" not in out
    assert "holds an unfinished run (epoch 2 of 10)" in err
    assert f"--resume {ckpt}" in err and "--restart" in err and err.count("\n") == 1
    assert ckpt.read_bytes() == before and not (tmp_path / "big.npz").exists()


def test_restart_starts_over_and_replaces_it(tmp_path, capsys):
    ckpt = tmp_path / "big.ckpt.npz"
    _interrupted_run(ckpt)
    capsys.readouterr()
    assert main([*TRAIN, "-o", str(tmp_path / "big.npz"), "--restart"]) == 0
    assert "epoch   1/3" in capsys.readouterr().out
    assert (tmp_path / "big.npz").exists() and not ckpt.exists()  # the run's own, removed


def test_resume_of_the_refused_checkpoint_goes_on(tmp_path, capsys):
    ckpt = tmp_path / "big.ckpt.npz"
    _interrupted_run(ckpt, at=2, of=3)
    capsys.readouterr()
    assert main([*TRAIN, "-o", str(tmp_path / "big.npz"), "--resume", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "epoch   3/3" in out and "epoch   1/3" not in out


@pytest.mark.parametrize("finished", [True, False])
def test_a_named_checkpoint_of_a_run_is_never_replaced_silently(tmp_path, capsys, finished):
    ckpt = tmp_path / "c.npz"
    args = [*TRAIN, "-o", str(tmp_path / "m.npz"), "--checkpoint", str(ckpt)]
    if finished:
        assert main(args) == 0  # kept: the user named it
    else:
        _interrupted_run(ckpt)
    capsys.readouterr()
    before = ckpt.read_bytes()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert ("holds a finished run (epoch 3 of 3)" if finished else "unfinished run") in err
    assert ckpt.read_bytes() == before


def test_a_file_in_the_checkpoints_way_that_is_none_is_refused_too(tmp_path, capsys):
    (tmp_path / "m.ckpt.npz").write_text("my notes")
    assert main([*TRAIN, "-o", str(tmp_path / "m.npz")]) == 1
    assert "no checkpoint bpgpu reads" in capsys.readouterr().err
    assert (tmp_path / "m.ckpt.npz").read_text() == "my notes"


def test_a_resume_that_would_write_over_another_run_is_refused(tmp_path, capsys):
    _interrupted_run(tmp_path / "a.npz", at=1, of=3)
    _interrupted_run(tmp_path / "b.npz", at=2, of=10)
    capsys.readouterr()
    args = [*TRAIN, "--resume", str(tmp_path / "a.npz"), "--checkpoint", str(tmp_path / "b.npz")]
    assert main([*args, "-o", str(tmp_path / "m.npz")]) == 1
    assert "another --checkpoint" in capsys.readouterr().err


def test_restart_without_a_checkpoint_is_a_usage_error(tmp_path, capsys):
    assert main([*TRAIN, "--restart", "--no-checkpoint", "-o", str(tmp_path / "m.npz")]) == 2


def test_a_replaced_model_is_named_with_what_it_held(tmp_path, capsys):
    out_file = str(tmp_path / "m.npz")
    assert main([*TRAIN, "-o", out_file]) == 0
    first = capsys.readouterr().out
    acc = float(first.split("test accuracy ")[1].split(",")[0])
    trained = bpgpu.load(out_file).data_info["trained"]
    assert trained["epochs"] == 3 and np.isclose(trained["accuracy"], acc, atol=1e-4)
    assert main([*TRAIN, "-o", out_file, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    held = f"a 64-256-10 network, 3 epochs, test accuracy {acc:.4f}"
    assert f"{out_file} exists ({held}" in out.splitlines()[0]
    assert f"model saved to {out_file} (it replaced {held}" in out
    assert bpgpu.load(out_file).data_info["trained"]["epochs"] == 1


def test_a_replaced_file_that_is_no_model_is_said_so(tmp_path, capsys):
    (tmp_path / "m.npz").write_text("not a model")
    assert main([*TRAIN, "-o", str(tmp_path / "m.npz")]) == 0
    assert "exists (not a model bpgpu reads" in capsys.readouterr().out
