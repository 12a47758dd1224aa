"""The backend protocol: what the core may ask of an array library.

A backend owns one array library on one device. The core only uses ``xp`` (an
array-api-compat namespace), ``device``, ``asarray``/``convert`` to bring data in,
``to_numpy`` to bring it out, ``synchronize`` before a clock stops, and ``ops``: the
typed operations of a training step (:mod:`._ops`), with this backend's overrides, or
the generic ones when the overrides are switched off.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any

import array_api_compat as compat
import numpy as np

from ._ops import Ops

# the environment variables by which a user sets the threads of a CPU library: where one
# is set, bpgpu leaves the count to it
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def cores() -> int:
    """The cores this process may run on (its affinity mask, where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_process(sharing: int) -> int | None:
    """Threads for each of ``sharing`` processes that train on this machine at once: the
    cores shared out (at least 1); None where one process runs, or the user set a
    thread count (``THREAD_VARIABLES``)."""
    if sharing <= 1 or any(os.environ.get(v, "").strip() for v in THREAD_VARIABLES):
        return None
    return max(1, cores() // sharing)


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says how to fix it.

    Raised by :func:`bpgpu.get_backend` (and so by every ``backend=`` argument) for an
    explicit name whose library is missing or has no working device; ``"auto"`` never
    raises it (it falls back to NumPy).

    Examples
    --------
    >>> import bpgpu
    >>> try:
    ...     bpgpu.MLP([2, 2], backend="torch:cuda:99")
    ... except bpgpu.BackendUnavailable as e:
    ...     print("refused:", "use backend=" in str(e))
    refused: True
    """


class DeviceMemoryError(MemoryError):
    """The device ran out of memory; the message has the bytes asked for and the fix.

    A :class:`MemoryError`, raised by training and scoring on every backend in the place
    of the library's own error (CuPy's ``OutOfMemoryError``, torch's
    ``OutOfMemoryError``, JAX's resource exhaustion), with the advice to lower the batch
    size or stream the data. Nothing is changed when it is raised.

    Examples
    --------
    >>> import bpgpu
    >>> issubclass(bpgpu.DeviceMemoryError, MemoryError)
    True
    """


def library(a: Any) -> str:
    """The array library ``a`` belongs to (``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``,
    ``"array_api_strict"``, ...; ``"builtins"`` for lists and numbers), as
    array-api-compat recognises it."""
    if compat.is_numpy_array(a):
        return "numpy"
    if compat.is_cupy_array(a):
        return "cupy"
    if compat.is_torch_array(a):
        return "torch"
    if compat.is_jax_array(a):
        return "jax"
    if compat.is_array_api_obj(a):
        return compat.array_namespace(a).__name__.split(".")[0]
    return type(a).__module__.split(".")[0]


def location(a: Any) -> tuple[str, int | None]:
    """Where an array lives: ``("cpu", None)``, ``("cuda", index)`` or ``("mps", None)``."""
    if compat.is_jax_array(a):
        dev = next(iter(a.devices()))
        return ("cuda", dev.id) if dev.platform == "gpu" else ("cpu", None)
    if compat.is_cupy_array(a):
        return ("cuda", int(a.device.id))
    if compat.is_torch_array(a):
        dev = a.device
        return ("cuda", dev.index or 0) if dev.type == "cuda" else (dev.type, None)
    return ("cpu", None)


class Backend:
    """Base class: one array library on one device.

    Subclasses set ``name``, ``library``, ``xp``, ``device``, ``where`` (the
    :func:`location` of arrays they hold) and ``_ops`` (their :class:`Ops` subclass, if
    any), and override ``to_numpy`` and, where the device is asynchronous,
    ``synchronize``.
    """

    name: str
    library: str
    xp: Any
    device: Any
    where: tuple[str, int | None] = ("cpu", None)
    dtypes: tuple[str, ...] = ("float32", "float64")

    def __repr__(self) -> str:
        return f"<bpgpu backend {self.name} on {self.device}>"

    def dtype(self, name: str) -> Any:
        """The library's dtype object for ``"float32"``/``"float64"``."""
        if name not in self.dtypes:
            raise ValueError(
                f"backend {self.name!r} does not support dtype {name!r}; "
                f"use one of {', '.join(self.dtypes)}"
            )
        return getattr(self.xp, name)

    def tf32(self) -> contextlib.AbstractContextManager:
        """Matrix products on TF32 tensor cores inside the block (``precision="tf32"``;
        only where ``compute_types`` has it)."""
        return contextlib.nullcontext()

    # the narrower types of mixed precision this backend computes in (precision=...)
    compute_types: tuple[str, ...] = ()

    def compute_dtype(self, name: str) -> Any:
        """The library's dtype of mixed precision ``name`` (``"bfloat16"``,
        ``"float16"``), or None for ``"tf32"`` (float32 arrays, tensor-core products).
        Refuses a type this backend does not have, naming the backends that do."""
        if name in self.compute_types:
            return None if name == "tf32" else getattr(self.xp, name)
        have = {
            "bfloat16": "torch, torch:cuda and jax, jax:cuda (CuPy has no bfloat16 dtype)",
            "float16": "torch, torch:cuda, jax, jax:cuda and cupy",
            "tf32": "torch:cuda (an NVIDIA GPU's tensor cores)",
        }[name]
        raise ValueError(
            f"precision={name!r} needs a backend that computes in it: {have}; backend "
            f"{self.name!r} has {', '.join(self.compute_types) or 'none'}. Use one of "
            "those, or precision=None"
        )

    def asarray(self, host: Any, dtype: str | None = None, copy: bool | None = None) -> Any:
        """A host (NumPy) array as a backend array on ``device``."""
        dt = None if dtype is None else self.dtype(dtype)
        return self.xp.asarray(host, dtype=dt, device=self.device, copy=copy)

    def owns(self, a: Any) -> bool:
        """True when ``a`` is an array of this library on this backend's device."""
        return library(a) == self.library and location(a) == self.where

    def convert(self, a: Any, dtype: str | None = None, what: str = "array") -> Any:
        """Any supported array as a backend array, without silent device mixing.

        Host arrays (NumPy, lists, CPU tensors) are copied to the device; an array of
        another library on this same device comes in through DLPack without a copy; an
        array on another device is refused with the fix in the message.
        """
        host = isinstance(a, np.ndarray) or library(a) in ("builtins", "array_api_strict")
        # a subclass of NumPy's (np.matrix, a masked array) is read as a plain array even
        # on the NumPy backend: its own operators mean other things
        if _ndarray_subclass(a) or (not self.owns(a) and (host or location(a) == ("cpu", None))):
            return self.asarray(_numeric_host(a, what), dtype)
        where = location(a)
        if self.owns(a) or where == self.where:
            if not self.owns(a) and _narrow_float(a.dtype):
                # bfloat16 and float8 do not cross to every library (CuPy has no
                # bfloat16): widened first, in the array's own library and on its device
                src = compat.array_namespace(a)
                a = src.astype(a, src.float32)
            b = a if self.owns(a) else self.xp.from_dlpack(a)  # same device: no copy
            if not self._numeric(b.dtype):
                raise _not_numeric(what, b.dtype)
            return b if dtype is None else self.xp.astype(b, self.dtype(dtype), copy=False)
        dev = where[0] if where[1] is None else f"{where[0]}:{where[1]}"
        raise ValueError(
            f"{what} is a {library(a)} array on {dev}, but the network runs on backend "
            f"{self.name!r} ({self.device}); move it explicitly (e.g. bpgpu.to_numpy({what})) "
            f"or move the network with net.to(...)"
        )

    def _numeric(self, dtype: Any) -> bool:
        try:
            return bool(self.xp.isdtype(dtype, ("real floating", "integral", "bool")))
        except (TypeError, ValueError):  # strings, objects: not a dtype of the standard
            return False

    def to_numpy(self, a: Any) -> np.ndarray:
        """A host copy of a backend array."""
        return np.array(a, copy=True)

    def synchronize(self) -> None:
        """Wait until queued device work is done (no-op on synchronous libraries)."""

    def context(self) -> contextlib.AbstractContextManager:
        """A context in which new arrays and kernels go to this backend's device."""
        return contextlib.nullcontext()

    def quiet(self) -> contextlib.AbstractContextManager:
        """A context for training in which NumPy's overflow, invalid and divide warnings
        (NumPy computes for this backend, or for array-api-strict) stay quiet: fit
        finds non-finite values itself and names the batch, as on every other library.
        A NumPy error mode the user chose (``np.seterr(over="raise")``) is kept."""
        mode = np.geterr()
        return np.errstate(
            **{k: "ignore" for k in ("over", "invalid", "divide") if mode[k] == "warn"}
        )

    def staging(self) -> Staging:
        """How streamed host rows reach this device (:class:`Staging`); CuPy overrides it
        with pinned buffers and a copy stream."""
        return Staging()

    compiles = False  # True: compile() turns a function into one program (JAX)

    def compile(self, fn, donate: tuple[int, ...] = ()):
        """``fn`` compiled into one program, for backends whose ``compiles`` is True."""
        raise NotImplementedError(f"backend {self.name!r} does not compile functions")

    graphs = False  # True: capture() records a step as a CUDA graph (CuPy, torch:cuda)

    def capture(self, fn):
        """``fn``'s device work recorded as a CUDA graph, not run: an object whose
        ``replay()`` runs it again with the arrays ``fn`` used (they must stay alive and
        in place). Raises where the backend or one of ``fn``'s operations cannot be
        captured; the caller then runs ``fn`` eagerly."""
        raise NotImplementedError(
            f"backend {self.name!r} has no CUDA graphs (CuPy or torch on a CUDA device)"
        )

    def reduction(self, comm: Any) -> str:
        """How this backend's buffers are summed over the ranks of ``comm``: ``"nccl"``,
        ``"cuda-aware"`` or ``"host"`` (:mod:`._mpi`), the best path every rank has.
        Collective the first time for a communicator, then remembered."""
        from . import _mpi

        known = self.__dict__.get("_reduction")
        if known is None or known[0] is not comm:
            path = _mpi.agree_on_path(comm, self.reduction_paths(), self.gpu_key())
            nccl = _mpi.Nccl(comm, self.where[1] or 0) if path == "nccl" else None
            self._reduction = known = (comm, path, nccl)
        return known[1]

    def gpu_key(self) -> Any:
        """This backend's GPU as ranks tell GPUs apart (:func:`._mpi.gpu_key`); None on
        the CPU."""
        return None

    def reduction_paths(self) -> list[str]:
        """The paths this rank could use, best first (a GPU backend adds NCCL and
        CUDA-aware MPI where they are there)."""
        return ["host"]

    def allreduce(self, flat: Any, comm: Any) -> Any:
        """The sum of the 1-D array ``flat`` over the ranks of the mpi4py communicator
        ``comm``. Here through the host (a copy out, ``MPI.Allreduce``, a copy in);
        backends with a direct path override it (NumPy and torch on the CPU in place,
        GPUs by :meth:`reduction`)."""
        from mpi4py import MPI

        host = np.ascontiguousarray(self.to_numpy(flat))
        comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        return self.asarray(host)

    def allreduce_arrays(self, arrays: list, comm: Any) -> list:
        """Each array summed over the ranks: here as one flat buffer (one collective);
        NumPy sums them in place, one collective per array (a bucket each)."""
        xp = self.xp
        total = self.allreduce(xp.concat([xp.reshape(a, (-1,)) for a in arrays]), comm)
        out, i = [], 0
        for a in arrays:
            n = math.prod(a.shape)
            out.append(xp.reshape(total[i : i + n], a.shape))
            i += n
        return out

    def threads(self, work: int, sharing: int = 1) -> contextlib.AbstractContextManager:
        """A context for training whose largest matrix product per step is ``work``
        multiply-adds, in one of ``sharing`` processes training on this machine at once
        (data-parallel ranks): CPU backends pick their thread count by them (the
        default: as the library likes)."""
        return contextlib.nullcontext()

    use_fast: bool | None = None  # None: read BPGPU_FAST at the first use of ``ops``
    _ops: Ops | None = None  # this backend's overrides (None: the generic ones only)
    _generic: Ops | None = None

    @property
    def ops(self) -> Ops:
        """The operations of a step: this backend's overrides, or the generic methods of
        :class:`Ops` when they are off. Fetch it once per step.

        Off when ``backend.use_fast = False``, or when the environment had
        ``BPGPU_FAST=0`` at this backend's first use (the environment is read once:
        reading it costs as much as a small array operation).
        """
        if self.use_fast is None:
            self.use_fast = os.environ.get("BPGPU_FAST") != "0"
        if self.use_fast and self._ops is not None:
            return self._ops
        if self._generic is None:
            self._generic = Ops(self.xp)
        return self._generic

    def translate(self, error: BaseException) -> BaseException | None:
        """A clearer exception for a library error (device out of memory), or None."""
        return None

    def info(self) -> dict[str, Any]:
        """Library version and device name, for reports."""
        return {"name": self.name, "version": "", "device": str(self.device)}


class Staging:
    """Streamed rows on their way to the device, a chunk at a time.

    ``fill(src, idx, k)`` gathers rows ``idx`` of the host array ``src`` for chunk ``k``
    (in the prefetch thread); ``to_device(rows)`` starts moving them (in the main thread,
    in the device's context) and returns what the model's input check takes. Here: a
    fresh host array, copied by that check. A backend with a faster road overrides both.
    """

    def fill(self, src: Any, idx: np.ndarray, k: int) -> Any:
        return np.asarray(src[idx])

    def to_device(self, rows: Any) -> Any:
        return rows


class PinnedStaging(Staging):
    """Streamed rows through two pinned (page-locked) host buffers, copied to the device
    on a stream of their own while the current stream computes (CuPy, torch CUDA).

    Chunk ``k`` is gathered (``fill``, prefetch thread) straight into buffer ``k % 2``,
    once that buffer's previous copy has finished reading it. ``_copy`` (the library's)
    allocates the device array on the current stream, queues the copy on the copy
    stream after the work queued so far, makes the current stream wait for it, and
    returns the array and an event whose ``synchronize()`` waits for the copy.
    """

    def __init__(self):
        self.slots: list[list] = [[None, None], [None, None]]  # [pinned buffer, copy done]

    def _pinned(self, count: int, dtype: np.dtype) -> np.ndarray:
        raise NotImplementedError

    def _copy(self, rows: np.ndarray) -> tuple[Any, Any]:
        raise NotImplementedError

    def fill(self, src, idx, k):
        slot = self.slots[k % 2]
        if slot[1] is not None:
            slot[1].synchronize()  # this buffer's last copy has read it
        shape = (len(idx), *src.shape[1:])
        count = math.prod(shape)
        if slot[0] is None or slot[0].size < count or slot[0].dtype != src.dtype:
            slot[0] = self._pinned(max(count, 1), src.dtype)
        rows = slot[0][:count].reshape(shape)
        np.take(src, idx, axis=0, out=rows)
        return k, rows

    def to_device(self, ticket):
        k, rows = ticket
        out, self.slots[k % 2][1] = self._copy(rows)
        return out


def _not_numeric(what: str, dtype: Any) -> TypeError:
    """The error for data of a dtype that is not a number, with the likely fix."""
    text = getattr(dtype, "kind", "") in ("U", "S", "O")
    hint = (
        "class names as labels 0..K-1: names, y = np.unique(y, return_inverse=True)"
        if what == "targets" and text
        else "convert text columns to numbers first"
    )
    return TypeError(f"{what} has dtype {dtype}; pass real numbers (int or float), e.g. {hint}")


def _numeric_host(a: Any, what: str) -> np.ndarray:
    """``a`` as a host NumPy array of real numbers, or a TypeError/ValueError that says so."""
    if a is None:
        raise TypeError(f"got None for {what}; pass an array of real numbers")
    if isinstance(a, np.ma.MaskedArray):  # its data would be read, masked values and all
        masked = int(np.ma.count_masked(a))
        if masked:
            raise ValueError(
                f"{what} is a masked array with {masked} masked value(s); fill them "
                f"({what}.filled(value)) or drop those rows first"
            )
        a = a.data
    try:
        h = to_host(a)
    except (ValueError, TypeError) as e:  # ragged lists, objects NumPy cannot read
        raise ValueError(f"{what} could not be read as a numeric array ({e})") from None
    if h.dtype == object and hasattr(a, "to_numpy"):  # pandas' nullable Float64, Int64
        try:
            h = a.to_numpy(dtype=np.float64, na_value=np.nan)  # pd.NA: NaN, refused later
        except (TypeError, ValueError):
            pass  # text: the error below says what to do
    if _ndarray_subclass(h):
        h = np.asarray(h)  # np.matrix and other subclasses: a plain array of the same data
    if _narrow_float(h.dtype):  # the standard (array-api-strict) has no float16, NumPy no
        return h.astype(np.float32)  # bfloat16 (ml_dtypes' is a void kind)
    if h.dtype.kind not in "biuf":
        raise _not_numeric(what, h.dtype)
    return h


def _narrow_float(dtype: Any) -> bool:
    """float16, bfloat16 or a float8/float4 kind (of any library): float32 holds each
    exactly, and every network is float32 or float64."""
    return str(dtype).rsplit(".", 1)[-1].startswith(("float16", "bfloat16", "float8", "float4"))


def _ndarray_subclass(a: Any) -> bool:
    """A subclass of NumPy's array other than a memory map (np.matrix, a masked array)."""
    return isinstance(a, np.ndarray) and type(a) is not np.ndarray and not isinstance(a, np.memmap)


def to_host(a: Any) -> np.ndarray:
    """Any supported array (NumPy, CuPy, torch, array-api-strict, list) as a NumPy array.

    Parameters
    ----------
    a : array or sequence
        An array of any backend's library, on any device, or nested lists.

    Returns
    -------
    numpy.ndarray
        A host copy (the array itself when it is NumPy's already).

    Examples
    --------
    >>> import bpgpu
    >>> net = bpgpu.MLP([2, 2], backend="numpy", seed=0)
    >>> bpgpu.to_numpy(net.predict([[0.0, 1.0]])).shape
    (1, 2)
    """
    if isinstance(a, np.ndarray):
        return a
    if compat.is_cupy_array(a):
        return a.get()
    if compat.is_torch_array(a):
        t = a.detach().cpu()
        try:
            return t.numpy()
        except TypeError:  # bfloat16 and the float8s have no NumPy dtype: float32 holds them
            return t.float().numpy()
    if compat.is_jax_array(a):
        return np.asarray(a)
    if compat.is_array_api_obj(a) and not compat.is_numpy_array(a):
        return np.from_dlpack(a)  # np.asarray refuses strict arrays on another device
    return np.asarray(a)
