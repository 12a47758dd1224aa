"""The three workloads: float32, ReLU hidden layers, softmax cross-entropy, plain SGD."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    name: str
    sizes: tuple[int, ...]
    batch: int
    samples: int  # training set size; one epoch is samples // batch steps
    lr: float = 0.01

    @property
    def steps_per_epoch(self) -> int:
        return self.samples // self.batch

    def gemm_flops(self) -> float:
        """FLOPs of one step's matrix products: forward, dW per layer, dX but the first."""
        B, s = self.batch, self.sizes
        pairs = list(zip(s[:-1], s[1:]))
        fwd = sum(2 * B * a * b for a, b in pairs)
        dw = fwd
        dx = sum(2 * B * a * b for a, b in pairs[1:])
        return float(fwd + dw + dx)

    def data(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """A synthetic, learnable classification set (float32 inputs, int64 labels)."""
        rng = np.random.default_rng(seed)
        k = self.sizes[-1]
        centers = rng.normal(size=(k, self.sizes[0])).astype(np.float32)
        y = rng.integers(0, k, size=self.samples)
        X = centers[y] + rng.normal(size=(self.samples, self.sizes[0])).astype(np.float32)
        return X.astype(np.float32), y.astype(np.int64)


WORKLOADS = {
    w.name: w
    for w in (
        Workload("small", (64, 32, 10), 32, 8192),
        Workload("mnist", (784, 512, 512, 10), 256, 16384),
        Workload("large", (2048, 2048, 2048, 10), 1024, 8192),
    )
}
