"""The same network on JAX: each epoch's full batches run as one compiled XLA program.

pip install -e '.[jax]'; python examples/jax_backend.py
"""

import numpy as np

import bpgpu
from bpgpu import datasets

X, y = datasets.load_digits()
numpy_net = bpgpu.MLP([64, 64, 10], backend="numpy", dtype="float64", seed=0)
jax_net = numpy_net.to("jax")  # the same weights
kw = dict(epochs=5, batch_size=64, optimizer="adam", seed=1, standardize=True)
numpy_net.fit(X, y, **kw)
history = jax_net.fit(X, y, **kw)
print(f"JAX compiled in {history.compile_time:.2f} s")
gap = max(np.abs(a - b).max() for a, b in zip(jax_net.get_weights(), numpy_net.get_weights()))
print(f"largest weight difference from NumPy after 5 epochs: {gap:.1e}")
assert gap < 1e-10  # float64: the same training, to rounding
