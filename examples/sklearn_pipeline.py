"""bpgpu in a scikit-learn pipeline: scaling, the estimator, cross-validation.

pip install -e '.[sklearn]'; python examples/sklearn_pipeline.py
"""

import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bpgpu.sklearn import BPClassifier  # MLPClassifier's parameters; backend="auto"

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # 60 epochs: a short demo
X, y = load_digits(return_X_y=True)
pipe = make_pipeline(
    StandardScaler(),
    BPClassifier(hidden_layer_sizes=(64,), max_iter=60, random_state=0, backend="numpy"),
)
scores = cross_val_score(pipe, X, y, cv=3)
print("accuracy per fold", scores.round(3))
assert scores.mean() > 0.9
