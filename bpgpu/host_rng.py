"""The host generator behind shuffling and validation splits: the same seed gives the
same batch order and the same split on every backend and every rank."""

from __future__ import annotations

import numpy as np


class HostRNG:
    """The host generator behind shuffling: permutations drawn here, used on any device.

    Its state round-trips through JSON (checkpoints), so a resumed fit draws the same
    batch order as an uninterrupted one.
    """

    def __init__(self, seed: int, stream: int = 1):
        self.gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))

    def permutation(self, n: int) -> np.ndarray:
        return self.gen.permutation(n)

    def state(self) -> dict:
        return self.gen.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.gen.bit_generator.state = state


def fresh_seed() -> int:
    """A random seed, for fits asked to be random; recorded so they can be resumed."""
    return int(np.random.SeedSequence().entropy % 2**63)


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``range(n)`` into (kept, held-out ``fraction``), both sorted."""
    perm = HostRNG(seed, stream=0).permutation(n)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])
