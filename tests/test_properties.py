"""Property tests (hypothesis): random networks pass gradcheck, float32 tracks float64,
gradients ignore the order of samples, and mutated model files never load as garbage."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis")  # a GPU machine without it still runs the rest

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import bpgpu
from bpgpu.activations import ACTIVATIONS
from bpgpu.costs import compatible_pairs

HIDDEN = [n for n, a in ACTIVATIONS.items() if a.hidden_ok]
PAIRS = compatible_pairs()

nets = st.fixed_dictionaries(
    {
        "sizes": st.lists(st.integers(1, 6), min_size=2, max_size=5),
        "hidden": st.sampled_from(HIDDEN),
        "pair": st.sampled_from(PAIRS),
        "batch": st.integers(1, 7),
        "seed": st.integers(0, 2**16),
    }
)


def build(spec, dtype="float64", backend="numpy"):
    output, cost = spec["pair"]
    sizes = list(spec["sizes"])
    if output == "softmax" and sizes[-1] == 1:
        sizes[-1] = 2  # a one-unit softmax is constant
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = bpgpu.MLP(
            sizes, spec["hidden"], output, cost, backend=backend, dtype=dtype, seed=spec["seed"]
        )
    rng = np.random.default_rng(spec["seed"])
    # random biases too: with the zero initial biases a dead ReLU (or a step at 0) hands
    # the next layer a pre-activation of exactly 0, a kink where no derivative exists
    net.set_weights(
        [w if w.ndim == 2 else w + rng.normal(scale=0.3, size=w.shape) for w in net.get_weights()]
    )
    X = rng.normal(size=(spec["batch"], sizes[0]))
    if cost == "categorical_cross_entropy":
        T = rng.integers(0, sizes[-1], size=spec["batch"])
    else:
        T = rng.uniform(0.05, 0.95, size=(spec["batch"], sizes[-1]))
    return net, X, T


# derandomized: the same examples on every run, so that a rare counterexample found one
# day is not a red CI run the next (a fresh clone found one in float32_tracks_float64 that
# 300 runs here did not); explore more with `--hypothesis-seed=N` and a profile of your own
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


@SETTINGS
@given(nets)
def test_random_networks_pass_gradcheck(spec):
    net, X, T = build(spec)
    assert bpgpu.gradcheck(net, X, T) <= 1e-6


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    s = max(np.linalg.norm(b), 1e-30)
    return np.linalg.norm(a - b) / s


@SETTINGS
@given(nets)
def test_float32_tracks_float64(spec):
    """Same (float32-representable) weights and data: float32's loss, gradients, errors
    and SGD step within 1e-3 of float64's, measured as `bpgpu check` measures them.

    Against the size of what each tensor sums where that is larger than the tensor (the
    measure of DESIGN 5 for sums that cancel): a plain relative error failed on a 4-5-1-2-6
    sigmoid/ReLU net whose b2 gradient, 3.6e-6, is a sum that cancels (2.6e-3 off; 2.5e-7
    against its terms). 1e-3, not DESIGN's 1e-5 (which the fixed suite holds): random
    nets of one sample and a unit or two come within 6e-5 (3,000 examples searched).
    """
    if spec["hidden"] == "binary_step":  # a step flips on rounding: no tolerance applies
        return
    net32, X, T = build(spec, "float32")
    X = X.astype(np.float32).astype(np.float64)
    report = bpgpu.compare_backends(net32, X, T, backends=["numpy"], dtypes=("float32",))
    errors = report.rows[0].errors
    assert set(errors) == {"loss", "gradients", "deltas", "step"}
    assert max(errors.values()) <= 1e-3, errors


@SETTINGS
@given(nets, st.randoms(use_true_random=False))
def test_gradients_do_not_depend_on_sample_order(spec, rnd):
    net, X, T = build(spec)
    perm = list(range(len(X)))
    rnd.shuffle(perm)
    for a, b in zip(net.gradients(X, T), net.gradients(X[perm], T[perm])):
        assert rel(a, b) <= 1e-12


_GOOD = {}


def good_file_bytes(suffix: str = ".npz") -> bytes:
    if suffix not in _GOOD:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            net = bpgpu.MLP([3, 4, 2], hidden="prelu", backend="numpy", seed=0)
            net.set_input_scaling(np.zeros(3), np.ones(3))
            net.save(f"{d}/m{suffix}")
            with open(f"{d}/m{suffix}", "rb") as f:
                _GOOD[suffix] = f.read()
    return _GOOD[suffix]


mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "insert", "zero"]),
        st.integers(0, 10**6),
        st.binary(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=4,
)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@settings(max_examples=300, deadline=None, derandomize=True)
@given(ops=mutations)
def test_mutated_model_files_load_or_raise_model_file_error(tmp_path_factory, suffix, ops):
    data = bytearray(good_file_bytes(suffix))
    for op, pos, blob in ops:
        if not data and op != "insert":
            continue
        pos %= max(len(data), 1)
        if op == "flip":
            data[pos] ^= blob[0] or 1
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = blob
        else:
            data[pos : pos + len(blob)] = bytes(len(blob))
    path = tmp_path_factory.mktemp("fuzz") / f"m{suffix}"
    path.write_bytes(bytes(data))
    try:
        net = bpgpu.load(path)
    except bpgpu.ModelFileError:
        return
    # it loaded: then it must be a sound network of the saved shape
    assert net.sizes == [3, 4, 2]
    assert all(np.all(np.isfinite(w)) for w in net.get_weights())
