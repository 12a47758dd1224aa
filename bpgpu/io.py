"""Model files and checkpoints: a zip of ``.npy`` members plus a JSON ``config.json``.

Writing is atomic (a temporary file in the target's folder, fsync, ``os.replace``), so
a crash or a kill mid-save leaves the old file or the new one, never half of one.
Reading trusts nothing: the config is parsed as JSON (size-capped), the members must be
exactly those the config implies, every array header is checked against the shape and
dtype the config implies *before* any data is read, data is read with a bound (a zip
bomb cannot inflate past it), pickles are never loaded, and values must be finite.
Anything else raises :class:`ModelFileError` (a ValueError) saying what is wrong.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from bpgpu import activations as _acts
from bpgpu import costs as _costs
from bpgpu import optimizers as _opt
from bpgpu import targets as _targets
from bpgpu._paths import file_path
from bpgpu._version import __version__
from bpgpu.layers import build, param_names, param_shapes

FORMAT = "bpgpu-model"
FORMAT_VERSION = 1
CONFIG = "config.json"
MAX_CONFIG_BYTES = 1 << 20
MAX_HEADER_BYTES = 1 << 16
DEFAULT_MAX_BYTES = 1 << 32  # 4 GiB of arrays; load(max_bytes=...) raises or lowers it
MAX_LAYERS = 10_000
MAX_WIDTH = 1 << 24


class ModelFileError(ValueError):
    """A model or checkpoint file that bpgpu refuses to load; the message says why.

    A :class:`ValueError`, raised by :func:`bpgpu.load` (and ``fit(resume=...)``) for a
    file that is not a bpgpu model, is truncated or altered, declares more than
    ``max_bytes``, or names an activation of your own not given in ``custom=``.

    Examples
    --------
    >>> import os, tempfile
    >>> import bpgpu
    >>> path = os.path.join(tempfile.mkdtemp(), "not-a-model.npz")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"hello")
    >>> try:
    ...     bpgpu.load(path)
    ... except bpgpu.ModelFileError as e:
    ...     print("refused")
    refused
    """


# ---- writing ---------------------------------------------------------------------------


def prepare_output(path: str | os.PathLike, what: str = "output file") -> str:
    """Check, before any work, that ``path`` can be written: a missing folder is created;
    a folder in the file's place, or a folder that cannot be made or written, is refused
    with an OSError naming ``path``. Returns the path as a string."""
    path = file_path(path, what)
    if not path:
        raise ValueError(f"{what}: the file name is empty")
    seps = (os.sep, os.altsep) if os.altsep else (os.sep,)
    if os.path.isdir(path) or path.endswith(seps):  # "runs/": a folder, made or not
        raise IsADirectoryError(f"{what} {path} is a folder; give a file name in it")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        why = e.strerror or e
        if isinstance(e, (FileExistsError, NotADirectoryError)):
            why = "a file stands where its folder should be"
        raise OSError(
            f"cannot write {what} {path}: cannot make its folder {folder} ({why})"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {what} {path}: its folder {folder} is not writable")
    return path


def _mode_for(path: str) -> int:
    """The permissions a new file gets from the umask, or those of the file it replaces."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it over
    ``path``. On any error the temporary file is removed and ``path`` is untouched; an
    OSError names ``path`` (never the temporary file). The file gets the permissions the
    umask gives a new file, or keeps those of the file it replaces."""
    path = file_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    except OSError as e:
        raise OSError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and tmp in str(e):
            raise OSError(f"cannot write {path}: {e.strerror or e}") from None
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass  # some filesystems and platforms cannot fsync a folder


def write_text(path: str | os.PathLike, text: str) -> None:
    """``text`` to ``path``, atomically (reports, predictions)."""
    atomic_write(path, lambda f: f.write(text.encode()))


def write_archive(path: str | os.PathLike, config: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``config`` and ``arrays`` atomically as a bpgpu zip archive."""
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise ValueError(f"refusing to save {name}: it contains NaN or inf")
    text = json.dumps(config, sort_keys=True).encode()

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr(CONFIG, text)
            for name, a in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as m:
                    np.lib.format.write_array(m, np.ascontiguousarray(a), allow_pickle=False)

    atomic_write(path, write)


def model_config(
    sizes: list[int], activations: list[str], cost: str, dtype: str, seed, scaled: bool
) -> dict:
    """The JSON config that describes a network's architecture."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bpgpu_version": __version__,
        "kind": "model",
        "sizes": list(sizes),
        "activations": list(activations),
        "cost": cost,
        "dtype": dtype,
        "seed": seed,
        "input_scaling": scaled,
    }


# ---- reading ---------------------------------------------------------------------------


def _fail(path, why: str) -> ModelFileError:
    return ModelFileError(f"{os.fspath(path)}: {why}")


def _read_member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with zf.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ModelFileError(f"member {name} is larger than the {limit} bytes allowed")
    return data


class CustomObjectError(TypeError):
    """An object passed for a name of the user's own is not of the kind the file uses
    it as (an activation where the cost is named, say)."""


def _check_custom(cfg: dict, custom: dict | None, path) -> None:
    """Every activation or cost the file marks as the user's own is in ``custom``, as an
    object of the right kind."""
    custom = {} if custom is None else custom
    for name in cfg.get("custom", []):
        if name in cfg["activations"] and name == cfg["cost"]:
            raise _fail(path, f"{name!r} names both an activation and the cost of your own")
        kind, cls = (
            ("activation", _acts.Activation)
            if name in cfg["activations"]
            else ("cost", _costs.Cost)
        )
        if name not in custom:
            raise _fail(
                path,
                f"{kind} {name!r} is an object of your own: the file names it and cannot "
                f"hold it. Load it from Python with bpgpu.load(path, custom={{{name!r}: "
                f"your_{kind}}}), the same object the network was built with",
            )
        if not isinstance(custom[name], cls):
            raise CustomObjectError(
                f"custom[{name!r}] must be a bpgpu.{cls.__module__.split('.')[-1]}."
                f"{cls.__name__} (the file uses it as the {kind}); got "
                f"{type(custom[name]).__name__}"
            )
        if custom[name].name != name:  # the network would not be the one saved
            raise CustomObjectError(
                f"custom[{name!r}] is the {kind} named {custom[name].name!r}; give the "
                f"object the file's {kind} was saved as, named {name!r}"
            )


def resolved(cfg: dict, custom: dict | None = None) -> tuple[list, Any]:
    """The activations and cost a validated config names: bpgpu's by their names, the
    user's own (the config's ``custom``) as the objects ``custom`` gives for them."""
    own, custom = set(cfg.get("custom", [])), custom or {}
    acts = [custom[n] if n in own else n for n in cfg["activations"]]
    return acts, custom[cfg["cost"]] if cfg["cost"] in own else cfg["cost"]


def _check_config(cfg: Any, path, custom: dict | None = None) -> dict:
    """Validate the architecture part of a parsed config (``custom``: the user's own
    activations and cost by name, for the names the config marks as such); returns it."""
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise _fail(path, f"not a bpgpu model file (config format is not {FORMAT!r})")
    if cfg.get("format_version") != FORMAT_VERSION:
        raise _fail(
            path,
            f"format version {cfg.get('format_version')!r} is not supported by this bpgpu "
            f"(reads version {FORMAT_VERSION}); upgrade bpgpu",
        )
    sizes = cfg.get("sizes")
    if not (
        isinstance(sizes, list)
        and 2 <= len(sizes) <= MAX_LAYERS
        and all(type(n) is int and 1 <= n <= MAX_WIDTH for n in sizes)
    ):
        raise _fail(path, "config 'sizes' must list 2 or more positive layer widths")
    acts = cfg.get("activations")
    if not (isinstance(acts, list) and len(acts) == len(sizes) - 1):
        raise _fail(path, "config 'activations' must name one activation per layer")
    if not all(isinstance(name, str) for name in acts):
        raise _fail(path, "config 'activations' must be names")
    if not isinstance(cfg.get("cost"), str):
        raise _fail(path, f"config 'cost' {cfg.get('cost')!r} must be a name")
    own = cfg.get("custom", [])
    if not (isinstance(own, list) and all(n in [*acts, cfg["cost"]] for n in own)):
        raise _fail(path, "config 'custom' must list names of its activations or cost")
    for name in acts:
        if name not in own and name not in _acts.ACTIVATIONS:
            raise _fail(path, f"unknown activation {name!r} in config")
    if cfg["cost"] not in own and cfg["cost"] not in _costs.COSTS:
        raise _fail(path, f"unknown cost {cfg['cost']!r} in config")
    _check_custom(cfg, custom, path)
    if cfg.get("dtype") not in ("float32", "float64"):
        raise _fail(path, f"dtype {cfg.get('dtype')!r} must be float32 or float64")
    if cfg.get("seed") is not None and type(cfg.get("seed")) is not int:
        raise _fail(path, "config 'seed' must be an integer or null")
    if type(cfg.get("input_scaling", False)) is not bool:
        raise _fail(path, "config 'input_scaling' must be true or false")
    if not isinstance(cfg.get("data", {}), dict):
        raise _fail(path, "config 'data' (what the model was trained on) must be an object")
    if "classes" in cfg:
        try:
            _targets.from_json(cfg["classes"], _targets.class_count(sizes[-1]))
        except (TypeError, ValueError) as e:
            raise _fail(path, f"config {e}") from None
    return cfg


def recorded_classes(cfg: dict) -> list | None:
    """The classes of a classification that ``bpgpu train`` recorded in a file's ``data``
    section (files written before the config held ``classes``), where they are valid
    for its outputs; else None."""
    data = cfg.get("data")
    if not isinstance(data, dict) or data.get("task") not in ("classification", "binary"):
        return None
    try:
        return _targets.from_json(data.get("classes"), _targets.class_count(cfg["sizes"][-1]))
    except (TypeError, ValueError):
        return None


def expected_shapes(cfg: dict, custom: dict | None = None) -> dict[str, tuple[int, ...]]:
    """Member name -> shape of every model array the config implies."""
    shapes = param_shapes(build(cfg["sizes"], resolved(cfg, custom)[0]))
    if cfg.get("input_scaling"):
        shapes["x_mean"] = shapes["x_scale"] = (cfg["sizes"][0],)
    return shapes


def checkpoint_shapes(cfg: dict, custom: dict | None = None) -> dict[str, tuple[int, ...]]:
    """Members of a checkpoint: the model's, the optimizer's slots per parameter
    (``opt.<slot>.<name>``) and the best weights so far (``best.<name>``)."""
    if cfg.get("kind") != "checkpoint":  # a model file holds no training state
        raise ModelFileError(
            "this is a model file, not a checkpoint: it holds the weights, not the "
            "optimizer's state, the batch order or the history a resume continues. "
            "fit(checkpoint=...) (bpgpu train --checkpoint) writes one; to train a saved "
            "model further, load it (bpgpu.load) and fit it"
        )
    shapes = expected_shapes(cfg, custom)
    tr = cfg.get("training")
    try:
        slots = tr.get("optimizer_slots")
        if slots is None:  # written before they were recorded: a built-in's
            slots = _opt.get(tr["settings"]["optimizer"]).slots
        elif not (isinstance(slots, list) and all(isinstance(x, str) for x in slots)):
            raise ValueError(f"optimizer_slots {slots!r} is not a list of names")
        has_best = bool(tr["has_best"])
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise ModelFileError(f"checkpoint 'training' section is invalid ({e})") from None
    for name in param_names(build(cfg["sizes"], resolved(cfg, custom)[0])):
        for slot in slots:
            shapes[f"opt.{slot}.{name}"] = shapes[name]
        if has_best:
            shapes[f"best.{name}"] = shapes[name]
    return shapes


def any_shapes(cfg: dict, custom: dict | None = None) -> dict[str, tuple[int, ...]]:
    """Members of a model file, or of a checkpoint (which a model loader also accepts)."""
    if cfg.get("kind") == "checkpoint":
        return checkpoint_shapes(cfg, custom)
    return expected_shapes(cfg, custom)


def read_archive(
    path: str | os.PathLike,
    shapes_for: Callable[..., dict[str, tuple[int, ...]]],
    max_bytes: int = DEFAULT_MAX_BYTES,
    custom: dict | None = None,
    what: str = "model file",
) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and validate an archive (``what``: "model file" or "checkpoint", for the
    messages); ``shapes_for(config, custom)`` names every member it must hold
    (``custom``: the user's own activations and cost, by name)."""
    path = file_path(path, what)
    if custom is not None and not isinstance(custom, dict):
        raise TypeError(
            f"custom must be a dict of names to your activations and cost; got "
            f"{type(custom).__name__}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        zf = zipfile.ZipFile(path)
    except Exception as e:  # BadZipFile, OSError, and what odd bytes make zipfile raise
        raise _fail(path, _not_an_archive(path, what, e)) from None
    with zf:
        try:
            return _read_open_archive(zf, path, shapes_for, max_bytes, custom)
        except (ModelFileError, CustomObjectError):
            raise
        except Exception as e:  # zipfile, zlib, struct and numpy header errors alike:
            # whatever a corrupt file makes the readers raise becomes one documented error
            raise _fail(path, f"corrupt file ({type(e).__name__}: {e})") from None


def looks_like_safetensors(path: str) -> bool:
    """Whether ``path`` starts as a safetensors file does (a header length, then ``{``)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


# names of files for other runtimes (``MLP.export``'s, and torch's own ``.pth``): never a
# bpgpu model file or checkpoint
EXPORT_SUFFIXES = (".onnx", ".pt2", ".pt", ".pth")


def _export_hint(path: str, what: str) -> str | None:
    """What a file named as an export (``.onnx``, torch's) is, where its name says so."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in EXPORT_SUFFIXES:
        return (
            f"a {suffix} file is an export (for another runtime), not a bpgpu {what}: "
            "load the .npz or .safetensors it was exported from"
        )
    return None


def _not_an_archive(path: str, what: str, e: Exception) -> str:
    """Why a file that is not a zip is no model file or checkpoint, with what it is
    where its name or first bytes tell."""
    hint = _export_hint(path, what)
    if hint:
        return hint
    if looks_like_safetensors(path) and what == "checkpoint":
        return (
            "a .safetensors model file, not a checkpoint: it holds the weights, not the "
            "optimizer's state a resume continues. To train it further, load it "
            "(bpgpu.load) and fit it"
        )
    return f"not a bpgpu {what} (not a readable zip: {e})"


def _read_open_archive(zf, path, shapes_for, max_bytes, custom):
    names = zf.namelist()
    if CONFIG not in names:  # a torch file (a zip too), named .pt, is an export
        why = _export_hint(path, "model file") or f"missing {CONFIG}; not a bpgpu model file"
        raise _fail(path, why)
    try:
        cfg = json.loads(_read_member(zf, CONFIG, MAX_CONFIG_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(path, f"{CONFIG} is not valid JSON ({e})") from None
    cfg = _check_config(cfg, path, custom)
    try:
        shapes = shapes_for(cfg, custom)
    except ModelFileError as e:  # what the members must be: said with the file's name
        raise _fail(path, str(e)) from None
    dtype = np.dtype(cfg["dtype"]).newbyteorder("<")
    total = sum(int(np.prod(s, dtype=np.int64)) * dtype.itemsize for s in shapes.values())
    if total > max_bytes:
        raise _fail(
            path,
            f"config declares {total} bytes of arrays, more than max_bytes={max_bytes}; "
            "pass a larger max_bytes only if you trust this file",
        )
    want = {f"{k}.npy" for k in shapes} | {CONFIG}
    if len(names) != len(set(names)) or set(names) != want:
        extra, missing = sorted(set(names) - want), sorted(want - set(names))
        raise _fail(
            path,
            "members do not match the config"
            + (f"; unexpected: {', '.join(extra)}" if extra else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + ("; duplicated names" if len(names) != len(set(names)) else ""),
        )
    arrays = {}
    for name, shape in shapes.items():
        arrays[name] = _read_npy(zf, f"{name}.npy", shape, dtype, path)
    if "x_scale" in arrays and not bool(np.all(arrays["x_scale"] > 0)):
        raise _fail(path, "x_scale.npy holds a scale <= 0; the input scaling must divide by > 0")
    return cfg, arrays


def _read_npy(zf, member: str, shape: tuple[int, ...], dtype: np.dtype, path) -> np.ndarray:
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        readers = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }
        if version not in readers:
            raise _fail(path, f"{member}: unsupported .npy version {version}")
        got_shape, fortran, got_dtype = readers[version](f, max_header_size=MAX_HEADER_BYTES)
        if got_dtype.hasobject or got_dtype != dtype:
            raise _fail(path, f"{member}: dtype {got_dtype} where the config implies {dtype}")
        if tuple(got_shape) != tuple(shape):
            raise _fail(path, f"{member}: shape {tuple(got_shape)}, the config implies {shape}")
        data = f.read(nbytes + 1)
    if len(data) != nbytes:
        raise _fail(path, f"{member}: {len(data)} data bytes where {nbytes} are expected")
    a = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    if not np.all(np.isfinite(a)):
        raise _fail(path, f"{member} contains NaN or inf")
    return np.array(a, dtype=dtype.newbyteorder("="))


def read_model(
    path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES, custom: dict | None = None
):
    """The validated config and arrays of a model file or a checkpoint (``custom``: the
    user's own activations and cost the file names, by name)."""
    return read_archive(path, any_shapes, max_bytes, custom)
