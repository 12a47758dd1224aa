"""Regression: an identity output, the quadratic cost, R^2 on held-out rows.

python examples/regression.py
"""

import numpy as np

import bpgpu
from bpgpu import datasets

rng = np.random.default_rng(0)
X = rng.uniform(-3, 3, size=(2000, 4)) * [1, 10, 100, 1000]  # features on any scale
y = np.sin(X[:, 0]) + 0.1 * X[:, 1] - 0.001 * X[:, 2] + rng.normal(0, 0.05, size=2000)
s = datasets.split(X, y, val=0.1, test=0.2, seed=0)
net = bpgpu.MLP([4, 64, 64, 1], hidden="tanh", output="identity", cost="quadratic")
net.fit(s.X_train, s.y_train, epochs=60, optimizer="adam", lr=3e-3, standardize=True)
pred = bpgpu.to_numpy(net.predict(s.X_test)).ravel()
r2 = 1 - np.sum((s.y_test - pred) ** 2) / np.sum((s.y_test - s.y_test.mean()) ** 2)
print(f"test R^2 {r2:.3f}")
assert r2 > 0.9
