"""Networks of one structure on JAX: what a second, third ... network costs.

Two workloads that build many networks of one shape, timed whole (compiling included):
``cross_val_score`` of a ``BPClassifier(backend="jax")`` on the digits (5 folds, 30
iterations), and three ``MLP``s of one shape with other seeds (5 epochs each). Run it
in a fresh process (``python -m benchmarks.jax_shared``); results/jax-shared-programs.md
has the numbers against the commit before the programs were shared.
"""

from __future__ import annotations

import time
import warnings


def main() -> None:
    import bpgpu
    from bpgpu.sklearn import BPClassifier

    warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning at 30 iterations
    from sklearn.model_selection import cross_val_score

    X, y = bpgpu.datasets.load_digits()
    X = X / 16
    t = time.perf_counter()
    est = BPClassifier(hidden_layer_sizes=(64,), max_iter=30, backend="jax", random_state=0)
    cross_val_score(est, X, y, cv=5)
    cv = time.perf_counter() - t
    t = time.perf_counter()
    for seed in range(3):
        bpgpu.MLP([64, 32, 10], seed=seed, backend="jax").fit(X, y, epochs=5)
    print(f"cross_val_score {cv:.2f} s, three seeds {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
