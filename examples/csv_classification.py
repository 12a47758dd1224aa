"""Classify rows of a CSV file: read it, train, evaluate on held-out rows, save, predict.

    python examples/csv_classification.py

The CSV is the embedded 8x8 digits written out with a header and the label in the last
column, as a user's own file would be; any CSV with a label column works the same
(``label_column=`` names it by header or number).
"""

import os
import tempfile

import numpy as np

import bpgpu
from bpgpu import datasets

folder = tempfile.mkdtemp()
path = os.path.join(folder, "digits.csv")
X, y = datasets.load_digits()
header = ",".join([f"pixel_{i}" for i in range(64)] + ["digit"])
np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%g", header=header, comments="")

X, y = datasets.load_csv(path, label_column="digit")
s = datasets.split(X, y, val=0.1, test=0.2, seed=0)
net = bpgpu.MLP([X.shape[1], 128, 10], hidden="relu", output="softmax", seed=0)
net.fit(
    s.X_train,
    s.y_train,
    epochs=20,
    optimizer="adam",
    standardize=True,
    validation_data=(s.X_val, s.y_val),
    patience=5,
)
scores = net.evaluate(s.X_test, s.y_test)
print(f"test accuracy {scores['accuracy']:.3f}")
assert scores["accuracy"] > 0.9

net.save(os.path.join(folder, "digits.npz"))  # the input scaling goes with it
again = bpgpu.load(os.path.join(folder, "digits.npz"))
print("predicted", bpgpu.to_numpy(again.classify(s.X_test[:10])), "true", s.y_test[:10])
