"""Loss and accuracy curves as a PNG (matplotlib is an optional extra: bpgpu[plot])."""

from __future__ import annotations

import os


def plot_history(history, path: str | os.PathLike, title: str = "") -> bool:
    """Write the curves of a History to ``path``; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from bpgpu.io import atomic_write

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(history.epoch, history.loss, label="train")
    ax2.plot(history.epoch, history.accuracy, label="train")
    if any(v == v for v in history.val_loss):  # not all NaN
        ax1.plot(history.epoch, history.val_loss, label="validation")
        ax2.plot(history.epoch, history.val_accuracy, label="validation")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return True
