"""The files ``bpgpu train`` writes: the model, the checkpoint, the curves.

Each is checked writable when the run starts (by the rank that writes it), before any
work, and written at its end. No work is lost on a re-run: a checkpoint already at the
run's checkpoint path holds a run of its own (Ctrl-C kept it, or a ``--checkpoint`` the
user named), so it is refused up front with both ways on (``--resume`` it, or
``--restart`` to replace it), never replaced without a word; a model file the run will
replace is named with what it held, when the run starts and when it ends.
"""

from __future__ import annotations

import argparse
import os

from bpgpu.backends._install import install_hint


class TrainFiles:
    """The files of one ``bpgpu train`` run, checked when it starts."""

    def __init__(self, args: argparse.Namespace, root: bool):
        from bpgpu.checkpoint import check_path
        from bpgpu.io import prepare_output
        from bpgpu.network_files import model_format

        model_format(args.out)  # an export suffix (.onnx) is refused now, not after the fit
        self.out = prepare_output(args.out, "model file") if root else args.out
        # a checkpoint the user named (or resumes) is theirs to keep; the default one
        # serves this run only
        self.own_ckpt = args.checkpoint is not None or args.resume is not None
        self.ckpt = None
        if not args.no_checkpoint:
            stem = os.path.splitext(self.out)[0]
            self.ckpt = args.checkpoint or args.resume or stem + ".ckpt.npz"
            check_path(self.ckpt)
            if not args.restart and not _same(self.ckpt, args.resume):
                refuse_a_kept_run(self.ckpt, args.resume)
            if root:
                prepare_output(self.ckpt, "checkpoint")
        self.png = None
        if not args.no_plot:
            self.png = args.plot or os.path.splitext(self.out)[0] + ".png"
            if root:
                prepare_output(self.png, "plot")
        self.replaces = held_by(self.out) if root and os.path.isfile(self.out) else None
        if self.replaces is not None:
            print(f"{self.out} exists ({self.replaces}): this run replaces it when it ends")

    def write(self, net, history) -> None:
        """The model, the checkpoint kept or removed, the curves."""
        from bpgpu.cli.plot import plot_history

        ckpt = self.ckpt
        net.save(self.out)
        was = "" if self.replaces is None else f" (it replaced {self.replaces})"
        print(f"model saved to {self.out}{was}")
        if ckpt and not self.own_ckpt:
            os.remove(ckpt)  # the model holds all it had
        elif ckpt and history.stopped_early:
            print(f"checkpoint kept at {ckpt} (early stopping ended the fit: it trains no further)")
        elif ckpt:
            print(f"checkpoint kept at {ckpt} (to train further: --resume {ckpt} --epochs N)")
        if self.png:
            if plot_history(history, self.png, title=str(net)):
                print(f"curves saved to {self.png}")
            else:
                hint = install_hint("plot")
                print(f"matplotlib is not installed ({hint}); no plot written")


def _same(a: str, b: str | None) -> bool:
    return b is not None and os.path.abspath(a) == os.path.abspath(b)


def refuse_a_kept_run(path: str, resume: str | None) -> None:
    """Refuse to start a run over the checkpoint at ``path`` (if there is one), saying
    what it holds and both ways on."""
    if not os.path.exists(path):
        return
    from bpgpu import checkpoint
    from bpgpu.io import ModelFileError

    other = ", or give this run another --checkpoint" if resume else ""
    try:
        tr = checkpoint.read(path)[0]["training"]
        epoch, epochs = int(tr["epoch"]), int(tr["settings"]["epochs"])
        stopped = bool(tr["history"].get("stopped_early"))
    except (ModelFileError, OSError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(
            f"{path} is in the way of this run's checkpoint and is no checkpoint bpgpu reads "
            f"({str(e).splitlines()[0][:120]}): move it away, or pass --restart to replace it"
        ) from None
    if epoch < epochs and not stopped:
        raise ValueError(
            f"{path} holds an unfinished run (epoch {epoch} of {epochs}): continue it with "
            f"--resume {path} (and --epochs N for more), or pass --restart to start over "
            f"and replace it{other}"
        )
    raise ValueError(
        f"{path} holds a finished run (epoch {epoch} of {epochs}"
        + (", stopped early" if stopped else "")
        + f"): pass --restart to start over and replace it{other}, or --resume {path} "
        "--epochs N to train it further"
    )


def held_by(path: str) -> str:
    """What the model file at ``path`` holds, in a few words: its network, and the epochs
    and test scores ``bpgpu train`` recorded in it."""
    import bpgpu

    try:
        net = bpgpu.load(path, backend="numpy")
    except Exception as e:  # anything in the way: said, and replaced as the user asked
        return f"not a model bpgpu reads: {str(e).splitlines()[0][:80]}"
    sizes = "-".join(map(str, net.sizes))
    trained = (net.data_info or {}).get("trained")
    if not isinstance(trained, dict):
        return f"a {sizes} network"
    parts = [f"a {sizes} network, {trained.get('epochs')} epochs"]
    for key in ("accuracy", "loss", "r2"):
        if isinstance(trained.get(key), (int, float)):
            parts.append(f"test {key.replace('r2', 'R^2')} {trained[key]:.4f}")
    return ", ".join(parts)
