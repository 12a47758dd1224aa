"""scikit-learn estimators on any bpgpu backend: ``BPClassifier`` and ``BPRegressor``.

They take ``MLPClassifier``'s and ``MLPRegressor``'s parameters, with the same names,
defaults and meanings, plus ``backend`` (``"auto"``: CuPy when a CUDA device works,
else NumPy), ``dtype`` (None: the inputs', float32 kept float32 as scikit-learn keeps
it) and ``precision``; so changing one import moves a pipeline to the GPU::

    from bpgpu.sklearn import BPClassifier as MLPClassifier

scikit-learn is an optional extra (``pip install -e '.[sklearn]'`` in the checkout);
importing bpgpu never imports it. The training loop is scikit-learn's (epochs, ``tol`` and
``n_iter_no_change``, ``early_stopping`` on a stratified validation split, the
``learning_rate`` schedules, ``warm_start``, ``partial_fit``); each step is bpgpu's
(:meth:`bpgpu.model.Model.step`), with the data on the device. ``solver="lbfgs"`` is
scipy's L-BFGS-B on the full batch, as scikit-learn's, with the loss and its gradient
from bpgpu's forward and backward pass (:meth:`bpgpu.model.Model.value_and_gradients`).
``sample_weight`` is scikit-learn's: each sample's error times its weight over its
batch's total weight (:func:`bpgpu.core.output`). What differs:

- the L2 penalty ``alpha`` enters each step as ``alpha / batch_size`` times ``W`` (so the
  last, shorter batch of an epoch gets the penalty of a full one); with
  ``sample_weight``, ``alpha / (batch_size * mean weight)``, the batch's expected
  total weight (scikit-learn's divides by each batch's own total: the same for a
  full batch, so there a weight of 2 is a repeated row, as scikit-learn's checks ask);
- Adam and momentum are PyTorch's rules (the same for a constant learning rate; Adam
  puts ``epsilon`` after the bias correction), and weights start with bpgpu's
  initialisation (He for the ReLU family, Glorot otherwise);
- sparse inputs are made dense on the device;
- ``coefs_`` and ``intercepts_`` are copies of the network's weights in scikit-learn's
  layout (``coefs_[i]`` is ``(n_in, n_out)``); assigning them sets the network's;
- with several regression targets and ``solver="lbfgs"``, the loss L-BFGS minimises
  (and ``loss_``) sums the squared errors over them, as its gradient does
  (scikit-learn's reports their average with the summed gradient); the stochastic
  solvers report the average, as scikit-learn's do.
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401
except ImportError:
    from bpgpu.backends._install import install_hint

    raise ImportError(f"bpgpu.sklearn needs scikit-learn: {install_hint('sklearn')}") from None

from bpgpu.sklearn._estimators import BPClassifier, BPRegressor  # noqa: E402

__all__ = ["BPClassifier", "BPRegressor"]

# pickles and reprs name them where users import them from
BPClassifier.__module__ = BPRegressor.__module__ = __name__
