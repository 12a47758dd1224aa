"""What the ``mpiexec`` test scripts share: the world communicator, a failed check that
ends the whole job (not one rank left waiting in a collective), and the comparisons.

The scripts run as ``python tests/mpi/<script>.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
_hook = sys.excepthook


def _abort(*exc):  # a failed check on one rank must end the job, not leave it waiting
    _hook(*exc)
    sys.stderr.flush()
    comm.Abort(1)


sys.excepthook = _abort


def rel(a, b) -> float:
    """``||a - b|| / ||b||``."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def digest(weights) -> str:
    """A hash of a network's weights, to compare ranks bit for bit."""
    return hashlib.sha256(b"".join(w.tobytes() for w in weights)).hexdigest()


def same_on_every_rank(net) -> bool:
    """Whether every rank holds bit-identical weights (collective)."""
    return len(set(comm.allgather(digest(net.get_weights())))) == 1
