"""The contenders. Each trains the same workload on the same data, batch gather included.

A peer has ``prepare(workload, X, y)`` and ``train(epochs)`` (shuffled mini-batch SGD for
that many epochs, waiting for the device at the end); its peak device memory is measured
from outside, peer by peer (:mod:`.memory`). ``GemmFloor`` runs only the step's matrix
products.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


class Peer:
    name = "peer"
    library = "numpy"  # whose GEMM floor this peer is measured against
    device = "cpu"

    def prepare(self, w, X, y): ...

    def train(self, epochs: int) -> None: ...


class Bpgpu(Peer):
    """bpgpu's own fit() on one backend; ``metrics=False`` fits with
    ``train_metrics=False`` (no per-batch loss and accuracy: the loop's work);
    ``graphs=True`` with its steps replayed from a CUDA graph (``-graphs`` peers);
    ``precision`` in mixed precision (``-bf16``, ``-fp16``, ``-tf32`` peers)."""

    def __init__(
        self,
        backend: str,
        metrics: bool = True,
        lib=None,
        tag: str = "",
        graphs: bool = False,
        precision: str | None = None,
    ):
        import bpgpu

        self.bpgpu = lib or bpgpu  # another build of bpgpu, for before/after runs
        self.backend = self.bpgpu.get_backend(backend)
        self.metrics, self.graphs, self.precision = metrics, graphs, precision
        short = {"bfloat16": "-bf16", "float16": "-fp16", "tf32": "-tf32", None: ""}
        kind = ("" if metrics else "-nometrics") + ("-graphs" if graphs else "")
        kind += short[precision]
        self.name = f"bpgpu{tag}{kind}[{self.backend.name}]"
        self.library = self.backend.library
        self.device = "cuda" if self.backend.where[0] == "cuda" else self.backend.where[0]

    def prepare(self, w, X, y):
        self.w, self.X, self.y = w, X, y
        mixed = {} if self.precision is None else {"precision": self.precision}
        self.net = self.bpgpu.MLP(
            list(w.sizes), "relu", "softmax", backend=self.backend, seed=0, **mixed
        )
        self.opt = self.bpgpu.optimizers.SGD(lr=w.lr)
        self.seed = 0

    def train(self, epochs):
        self.seed += 1  # a fresh batch order each call, as one long fit would have
        self.net.fit(
            self.X,
            self.y,
            epochs,
            batch_size=self.w.batch,
            optimizer=self.opt,
            seed=self.seed,
            train_metrics=self.metrics,
            **({"graphs": True} if self.graphs else {}),  # a base build may lack the option
        )
        self.net.backend.synchronize()


class NumpyLoop(Peer):
    """The textbook loop a user would write by hand: in-place NumPy SGD."""

    name = "numpy-loop"

    def prepare(self, w, X, y):
        rng = np.random.default_rng(0)
        self.w, self.X, self.rng = w, X, rng
        self.T = np.eye(w.sizes[-1], dtype=np.float32)[y]
        self.W = [
            (rng.normal(size=(o, i)) * math.sqrt(2 / i)).astype(np.float32)
            for i, o in zip(w.sizes[:-1], w.sizes[1:])
        ]
        self.b = [np.zeros(o, np.float32) for o in w.sizes[1:]]

    def train(self, epochs):
        B, lr, L = self.w.batch, np.float32(self.w.lr), len(self.W)
        for _ in range(epochs):
            perm = self.rng.permutation(len(self.X))
            for i in range(0, len(perm) - B + 1, B):
                idx = perm[i : i + B]
                A = [self.X[idx]]
                for l in range(L):
                    Z = A[-1] @ self.W[l].T + self.b[l]
                    A.append(np.maximum(Z, 0) if l < L - 1 else Z)
                Z = A[-1]
                P = np.exp(Z - Z.max(axis=1, keepdims=True))
                P /= P.sum(axis=1, keepdims=True)
                D = (P - self.T[idx]) / B
                for l in range(L - 1, -1, -1):
                    dW = D.T @ A[l]
                    db = D.sum(axis=0)
                    if l > 0:
                        D = (D @ self.W[l]) * (A[l] > 0)
                    self.W[l] -= lr * dW
                    self.b[l] -= lr * db


class JaxScan(Peer):
    """The JAX program a user would write by hand for this loop: the whole epoch one
    ``jax.jit`` of a ``lax.scan`` over batches gathered on the device, the host permutation
    sent once per epoch. bpgpu[jax]'s compiled epoch measured against its own floor."""

    library = "jax"

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.name = f"jax-scan[{device}]"

    def prepare(self, w, X, y):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp, self.w = jax, jnp, w
        dev = jax.devices("gpu" if self.device == "cuda" else "cpu")[0]
        put = lambda a: jax.device_put(a, dev)  # noqa: E731
        rng = np.random.default_rng(0)
        self.rng = rng
        self.X = put(np.asarray(X, np.float32))
        self.T = put(np.eye(w.sizes[-1], dtype=np.float32)[y])
        self.params = [
            (
                put((rng.normal(size=(o, i)) * math.sqrt(2 / i)).astype(np.float32)),
                put(np.zeros(o, np.float32)),
            )
            for i, o in zip(w.sizes[:-1], w.sizes[1:])
        ]
        B, lr, n_batches = w.batch, np.float32(w.lr), len(X) // w.batch
        self.put, Xd, Td = put, self.X, self.T

        def step(params, idx):
            x, t = Xd[idx], Td[idx]
            acts = [x]
            for l, (W, b) in enumerate(params):
                z = acts[-1] @ W.T + b
                acts.append(jnp.maximum(z, 0) if l < len(params) - 1 else z)
            z = acts[-1]
            p = jnp.exp(z - z.max(axis=1, keepdims=True))
            d = (p / p.sum(axis=1, keepdims=True) - t) / B
            new = list(params)
            for l in range(len(params) - 1, -1, -1):
                W, b = params[l]
                dW, db = d.T @ acts[l], d.sum(axis=0)
                if l > 0:
                    d = (d @ W) * (acts[l] > 0)
                new[l] = (W - lr * dW, b - lr * db)
            return new, None

        def epoch(params, perm):
            idx = perm[: n_batches * B].reshape(n_batches, B)
            return jax.lax.scan(step, params, idx)[0]

        self.epoch = jax.jit(epoch, donate_argnums=0)

    def train(self, epochs):
        # float32 products in float32, as every peer (JAX's default lets a GPU use TF32)
        with self.jax.default_matmul_precision("float32"):
            for _ in range(epochs):
                perm = self.put(self.rng.permutation(self.X.shape[0]).astype(np.int32))
                self.params = self.epoch(self.params, perm)
        self.jax.block_until_ready(self.params)


class TorchEager(Peer):
    """PyTorch as most users write it: nn.Sequential, autograd, torch.optim.SGD."""

    library = "torch"

    def __init__(self, device: str = "cpu"):
        import torch

        self.torch = torch
        self.device = device
        self.name = f"torch-eager[{device}]"

    def prepare(self, w, X, y):
        torch, nn = self.torch, self.torch.nn
        torch.manual_seed(0)
        layers = []
        for l, (i, o) in enumerate(zip(w.sizes[:-1], w.sizes[1:])):
            layers.append(nn.Linear(i, o))
            if l < len(w.sizes) - 2:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers).to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=w.lr)
        self.loss = nn.CrossEntropyLoss()
        self.X = torch.as_tensor(X, device=self.device)
        self.y = torch.as_tensor(y, device=self.device)
        self.w = w
        self.gen = torch.Generator(device="cpu").manual_seed(0)

    def train(self, epochs):
        torch, B = self.torch, self.w.batch
        n = self.X.shape[0]
        for _ in range(epochs):
            perm = torch.randperm(n, generator=self.gen).to(self.device)
            for i in range(0, n - B + 1, B):
                idx = perm[i : i + B]
                self.opt.zero_grad(set_to_none=True)
                out = self.model(self.X.index_select(0, idx))
                self.loss(out, self.y.index_select(0, idx)).backward()
                self.opt.step()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


class TorchCompile(TorchEager):
    """The same loop with the model under ``torch.compile(mode="reduce-overhead")``
    (TorchInductor, CUDA graphs of its forward and backward on a GPU): what a PyTorch
    user does to get rid of the launch overhead. Its compile time is the benchmark's
    ``first_epoch_s`` (the warm-up epoch), apart from the timed rounds."""

    def __init__(self, device: str = "cuda"):
        super().__init__(device)
        self.name = f"torch-compile[{device}]"

    def prepare(self, w, X, y):
        super().prepare(w, X, y)
        self.model = self.torch.compile(self.model, mode="reduce-overhead")


class Sklearn(Peer):
    """scikit-learn's MLPClassifier, plain SGD, on the CPU."""

    name = "sklearn-mlp"

    def prepare(self, w, X, y):
        self.w, self.X, self.y = w, X, y

    def train(self, epochs):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(
            hidden_layer_sizes=self.w.sizes[1:-1],
            activation="relu",
            solver="sgd",
            batch_size=self.w.batch,
            learning_rate_init=self.w.lr,
            momentum=0.0,
            nesterovs_momentum=False,
            alpha=0.0,
            max_iter=epochs,
            shuffle=True,
            tol=0.0,
            n_iter_no_change=10**9,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(self.X, self.y)


class GemmFloor(Peer):
    """Only the step's matrix products, on preallocated arrays: the speed limit."""

    def __init__(self, library: str = "numpy", device: str = "cpu"):
        self.library, self.device = library, device
        self.name = f"gemm-floor[{library}:{device}]"

    def prepare(self, w, X, y):
        self.w = w
        if self.library == "numpy":
            xp, self.sync = np, lambda: None
            make = lambda *s: np.random.default_rng(0).random(s, dtype=np.float32)  # noqa: E731
        elif self.library == "torch":
            import torch

            xp = torch
            dev = torch.device(self.device)
            self.sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
            make = lambda *s: torch.rand(*s, device=dev)  # noqa: E731
        else:  # cupy
            import cupy

            xp, self.sync = cupy, lambda: cupy.cuda.Device().synchronize()
            make = lambda *s: cupy.random.random(s, dtype=cupy.float32)  # noqa: E731
        B, s = w.batch, w.sizes
        self.xp = xp
        self.A = [make(B, n) for n in s[:-1]]
        self.W = [make(o, i) for i, o in zip(s[:-1], s[1:])]
        self.D = [make(B, o) for o in s[1:]]

    def train(self, epochs):
        A, W, D = self.A, self.W, self.D
        for _ in range(epochs * self.w.steps_per_epoch):
            for l in range(len(W)):
                A[l] @ W[l].T
            for l in range(len(W) - 1, -1, -1):
                D[l].T @ A[l]
                if l > 0:
                    D[l] @ W[l]
        self.sync()
