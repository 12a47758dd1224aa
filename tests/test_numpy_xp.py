"""The NumPy backend's namespace: its direct reductions give what array-api-compat gives."""

from __future__ import annotations

import array_api_compat.numpy as compat
import numpy as np
import pytest

from bpgpu.backends.numpy_backend import xp
from bpgpu.backends.numpy_xp import OVERRIDDEN

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_]
SHAPES = [(), (7,), (5, 3), (2, 3, 4), (0, 3)]


def arrays():
    rng = np.random.default_rng(0)
    for dtype in DTYPES:
        for shape in SHAPES:
            a = rng.normal(size=shape) * 10
            if dtype is np.bool_:
                a = a > 0
            elif np.dtype(dtype).kind == "u":
                a = np.abs(a)
            yield a.astype(dtype)
    yield np.array([[1.0, np.nan], [np.inf, -np.inf]], np.float32)  # NaN and inf propagate
    yield np.float32(2.5)  # a NumPy scalar, not an ndarray: the fallback
    yield np.ones((4, 6), np.float64)[:, ::2]  # not contiguous


def axes(a):
    yield None
    for k in range(a.ndim):
        yield k
        yield k - a.ndim
    if a.ndim >= 2:
        yield (0, a.ndim - 1)


def same(got, want):
    assert type(got) is type(want)
    if isinstance(want, (np.ndarray, np.generic)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    else:
        assert got == want


def outcome(f, *args, **kw):
    try:
        return "ok", f(*args, **kw)
    except Exception as e:  # the overrides must fail exactly where compat fails
        return "error", type(e)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf - inf, as compat
@pytest.mark.parametrize("name", ["sum", "max"])
def test_reductions_equal_compat(name):
    for a in arrays():
        for axis in axes(a):
            for keepdims in (False, True):
                got = outcome(getattr(xp, name), a, axis=axis, keepdims=keepdims)
                want = outcome(getattr(compat, name), a, axis=axis, keepdims=keepdims)
                assert got[0] == want[0], (name, a.dtype, a.shape, axis, keepdims)
                if got[0] == "ok":
                    same(got[1], want[1])
                else:
                    assert got[1] == want[1]


def test_sum_with_a_dtype_equals_compat():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    for dtype in (np.float64, np.float32, None):
        same(xp.sum(a, axis=1, dtype=dtype), compat.sum(a, axis=1, dtype=dtype))


def test_argmax_equals_compat():
    for a in arrays():
        if a.ndim == 0 or a.size == 0:
            continue
        for axis in [None, *range(a.ndim)]:
            for keepdims in (False, True):
                same(
                    xp.argmax(a, axis=axis, keepdims=keepdims),
                    compat.argmax(a, axis=axis, keepdims=keepdims),
                )


def test_take_equals_compat():
    rng = np.random.default_rng(1)
    for a in arrays():
        if a.ndim == 0:
            continue
        for axis in range(a.ndim):
            n = a.shape[axis]
            idx = rng.integers(0, n, size=5) if n else np.zeros(0, np.int64)
            same(xp.take(a, idx, axis=axis), compat.take(a, idx, axis=axis))
    v = np.arange(5.0)
    same(xp.take(v, np.array([4, 0])), compat.take(v, np.array([4, 0])))  # 1-D, no axis


def test_everything_else_is_compat():
    names = [n for n in dir(compat) if not n.startswith("__")]
    for n in names:
        if n not in OVERRIDDEN:
            assert getattr(xp, n) is getattr(compat, n), n
    assert xp.__array_api_version__ == compat.__array_api_version__
