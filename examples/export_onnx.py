"""Train, export to ONNX, and run the file in ONNX Runtime (no bpgpu needed there).

pip install -e '.[onnx]'; python examples/export_onnx.py
"""

import os
import tempfile

import numpy as np
import onnxruntime

import bpgpu
from bpgpu import datasets

X, y = datasets.load_digits()
net = bpgpu.MLP([64, 64, 10], seed=0)
net.fit(X, y, epochs=5, optimizer="adam", standardize=True)
path = os.path.join(tempfile.mkdtemp(), "digits.onnx")
net.export(path)  # the input scaling is inside the graph

session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
probabilities = session.run(None, {"input": X[:5].astype(np.float32)})[0]
print("ONNX Runtime's classes", probabilities.argmax(axis=1), "true", y[:5])
gap = np.abs(probabilities - bpgpu.to_numpy(net.predict(X[:5]))).max()
assert gap < 1e-5, gap
