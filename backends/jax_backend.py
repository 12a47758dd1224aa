"""JAX: ``jax`` (CPU) and ``jax:cuda`` / ``jax:cuda:N`` (an NVIDIA GPU).

``jax.numpy`` is an Array API namespace of its own, so the core runs on it unchanged, with
the generic, functional operations (JAX arrays cannot be written in place). What JAX adds
is its compiler: :meth:`JaxBackend.compile` turns the core's training step into one XLA
program (``jax.jit``, the parameters' and optimizer state's buffers donated), traced once
per shape and dtype.

float64 needs JAX's x64 mode, which is process-wide: this backend switches it on when it
is created (``jax.config.update("jax_enable_x64", True)``), so JAX's default dtypes in
the same process become 64-bit as well.

float32 matrix products run at full float32 precision. JAX's default lets a GPU
multiply in TF32 (a 10-bit mantissa): on an H200 that put ``bpgpu check``'s float32
errors at 1e-2 against the 1e-5 every backend meets. So the backend's device context,
in which every public method of a network runs, also sets
``jax.default_matmul_precision("float32")``, unless the user has chosen a precision
(``jax.config.update("jax_default_matmul_precision", "tensorfloat32")`` or that context
around the call): TF32 stays off unless asked for, as on CuPy and torch. JAX code of the
user's own outside bpgpu's calls keeps JAX's default.

``compile_seconds`` is all the time XLA spent tracing, lowering and compiling in this
process, as JAX reports it (``jax.monitoring``): the compiled step and epoch, and also
the first call of each eager operation for each shape (the validation split, the last
short batch's gathers).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ._base import Backend, BackendUnavailable, DeviceMemoryError
from ._install import install_hint

# JAX's own events for the phases of a compile; their durations summed, process-wide
_COMPILE_EVENTS = frozenset(
    {
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",
    }
)
_compiling = {"seconds": 0.0, "listening": False}


def _listen(event: str, seconds: float, **kwargs) -> None:
    if event in _COMPILE_EVENTS:
        _compiling["seconds"] += seconds


class JaxBackend(Backend):
    library = "jax"

    def __init__(self, arg: str | None = None):
        try:
            import jax
            import jax.numpy as jnp
        except Exception as e:  # ImportError, or a jaxlib that does not load
            raise BackendUnavailable(
                f"jax is not importable ({type(e).__name__}: {e}); {install_hint('jax')} "
                '([jax-cuda12] or [jax-cuda13] for GPUs), or use backend="numpy"'
            ) from e
        jax.config.update("jax_enable_x64", True)  # float64 networks; see the docstring
        kind, _, index = (arg or "cpu").partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown jax device {arg!r}; use jax, jax:cuda or jax:cuda:N")
        platform = "gpu" if kind == "cuda" else "cpu"
        try:
            devices = jax.devices(platform)
        except RuntimeError as e:
            raise BackendUnavailable(
                f"jax {jax.__version__} sees no {kind.upper()} device ({e}); "
                f"{install_hint('jax-cuda12')} (or [jax-cuda13]) on a machine with a GPU, "
                'or use backend="jax"'
            ) from None
        i = int(index) if index else 0
        if i >= len(devices):
            raise BackendUnavailable(f"jax sees {len(devices)} {kind} device(s), no {kind}:{i}")
        self.jax, self.xp, self.device = jax, jnp, devices[i]
        self.compiles = True
        self.where = ("cuda", i) if kind == "cuda" else ("cpu", None)
        self.name = "jax" if kind == "cpu" else f"jax:{arg}"
        self.compute_types = ("bfloat16", "float16")
        if not _compiling["listening"]:
            try:
                jax.monitoring.register_event_duration_secs_listener(_listen)
                _compiling["listening"] = True
            except Exception:  # a JAX without the listener API: no compile time known
                pass

    def asarray(self, host, dtype=None, copy=None):
        dt = None if dtype is None else self.dtype(dtype)
        if isinstance(host, np.ndarray):  # one transfer, no jnp array on the way
            return self.jax.device_put(
                host if dt is None else host.astype(dt, copy=False), self.device
            )
        return self.jax.device_put(self.xp.asarray(host, dtype=dt), self.device)

    def owns(self, a) -> bool:
        try:
            return type(a).__module__.startswith("jax") and self.device in a.devices()
        except AttributeError:
            return False

    def to_numpy(self, a) -> np.ndarray:
        return np.array(a, copy=True)

    def synchronize(self) -> None:
        """Wait for every computation queued on this device whose result is still held
        (JAX dispatches asynchronously and has no device-wide barrier:
        ``effects_barrier`` alone waits for side effects, not for results)."""
        mine = [a for a in self.jax.live_arrays() if self.device in a.devices()]
        self.jax.block_until_ready(mine)
        self.jax.effects_barrier()

    def context(self):
        """This device for new arrays, and float32 matrix products at full precision
        unless the user chose another (see the module's docstring)."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.jax.default_device(self.device))
        chosen = getattr(self.jax.config, "jax_default_matmul_precision", None)
        if chosen is None:  # the user chose none
            stack.enter_context(self.jax.default_matmul_precision("float32"))
        return stack

    @property
    def compile_seconds(self) -> float:
        """Seconds spent compiling: every XLA compile in the process as JAX reports it
        (0 where JAX cannot report them)."""
        return _compiling["seconds"]

    def compile(self, fn, donate: tuple[int, ...] = ()):
        """``fn`` as one XLA program (traced at the first call for each shape, dtype and
        placement of its arguments; the arguments ``donate`` names give their buffers to
        the results)."""
        return self.jax.jit(fn, donate_argnums=donate)

    def scan(self, body, carry, rows):
        """``lax.scan`` of ``body(carry, row)`` over the rows of ``rows``: the loop of
        :func:`bpgpu.core.train_batches`, compiled with it."""
        return self.jax.lax.scan(body, carry, rows)

    def translate(self, error):
        if "RESOURCE_EXHAUSTED" in str(error):
            return DeviceMemoryError(
                f"{self.device} is out of memory: {str(error).splitlines()[0]}. Lower "
                "batch_size, use smaller layers or float32"
            )
        return None

    def info(self) -> dict[str, Any]:
        """Name, JAX's version and the device: a GPU by its model, as CuPy and torch
        name theirs ("NVIDIA H200 (cuda:0)"), the CPU as JAX calls it."""
        device = str(self.device)
        if self.where[0] == "cuda":
            device = f"{getattr(self.device, 'device_kind', 'GPU')} ({device})"
        return {"name": self.name, "version": self.jax.__version__, "device": device}


def create(arg: str | None = None) -> JaxBackend:
    return JaxBackend(arg)
