"""Model files in the safetensors format: tensors named as ``net.to_torch().state_dict()``
names them, bpgpu's config in the header's metadata.

The format (huggingface/safetensors' specification): an 8-byte little-endian header
length ``N``, ``N`` bytes of JSON (``{"__metadata__": {str: str}, name: {"dtype",
"shape", "data_offsets"}, ...}``), then the tensors' bytes, row-major, little-endian,
back to back. Nothing in it executes. bpgpu writes and reads it with NumPy alone (no
dependency: the format is a header and raw bytes), and the tests prove it with
safetensors' own loaders (``safetensors.torch.load_file`` into ``net.to_torch()``).

Reading trusts nothing, as the ``.npz`` reader: the header length is bounded and must
fit the file, the tensors' bytes must match the sha256 bpgpu wrote in the metadata
(where a tool that rewrote the file kept it), the metadata must hold a valid bpgpu
config, the tensors must be exactly those the config implies with its dtype and their
shapes, their byte ranges must tile the data with no gap or overlap and end at the end
of the file, the total is checked against ``max_bytes`` before anything is read, and
values must be finite. Anything else is a :class:`bpgpu.io.ModelFileError` saying what
is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any

import numpy as np

from bpgpu import io
from bpgpu._paths import file_path
from bpgpu.interchange import state_names
from bpgpu.layers import build

__all__ = ["SUFFIX", "MAX_HEADER_BYTES", "write", "read", "looks_like"]

SUFFIX = ".safetensors"
# the config (itself capped at io.MAX_CONFIG_BYTES) plus one short entry per tensor
MAX_HEADER_BYTES = 2 * io.MAX_CONFIG_BYTES
METADATA_KEY = "bpgpu"  # the metadata entry that holds the config, as JSON text
# sha256 of the tensors' bytes in state_dict order (the format has no checksum; a zip
# member has its CRC): a flipped bit in the data is caught, whichever order a tool that
# rewrote the file stored them in
CHECKSUM_KEY = "bpgpu_sha256"
DTYPES = {"float32": "F32", "float64": "F64"}


looks_like = io.looks_like_safetensors


def _names(cfg: dict, custom: dict | None) -> dict[str, str]:
    """bpgpu name -> tensor name of every tensor the config implies."""
    layers = build(cfg["sizes"], io.resolved(cfg, custom)[0])
    return state_names(layers, bool(cfg.get("input_scaling")))


def write(
    path: str | os.PathLike, config: dict, arrays: dict[str, np.ndarray], layers: list
) -> None:
    """``config`` and ``arrays`` (bpgpu's names) of a network with ``layers`` as a
    safetensors file, atomically."""
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise ValueError(f"refusing to save {name}: it contains NaN or inf")
    names = state_names(layers, bool(config.get("input_scaling")))
    meta = {"format": "pt", METADATA_KEY: json.dumps(config, sort_keys=True)}
    header: dict[str, Any] = {"__metadata__": meta}
    offset, blobs, digest = 0, [], hashlib.sha256()
    for ours, theirs in names.items():
        a = np.ascontiguousarray(arrays[ours], dtype=np.dtype(config["dtype"]).newbyteorder("<"))
        header[theirs] = {
            "dtype": DTYPES[config["dtype"]],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + a.nbytes],
        }
        offset += a.nbytes
        blobs.append(a)
        digest.update(a.tobytes())
    meta[CHECKSUM_KEY] = digest.hexdigest()
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the tensors start 8-byte aligned, as safetensors pads

    def emit(f):
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in blobs:
            f.write(a.tobytes())

    io.atomic_write(path, emit)


def read(
    path: str | os.PathLike, max_bytes: int = io.DEFAULT_MAX_BYTES, custom: dict | None = None
) -> tuple[dict, dict[str, np.ndarray]]:
    """The validated config and arrays (bpgpu's names) of a safetensors model file."""
    path = file_path(path, "model file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such model file")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        cfg, entries, start, checksum = _header(f, path, size, custom)
        arrays, digest = {}, hashlib.sha256()
        dtype = np.dtype(cfg["dtype"]).newbyteorder("<")
        total = sum(e["data_offsets"][1] - e["data_offsets"][0] for e in entries.values())
        if total > max_bytes:
            raise io.ModelFileError(
                f"{path}: the header declares {total} bytes of tensors, more than "
                f"max_bytes={max_bytes}; pass a larger max_bytes only if you trust this file"
            )
        for ours, entry in entries.items():
            lo, hi = entry["data_offsets"]
            f.seek(start + lo)
            data = f.read(hi - lo)
            if len(data) != hi - lo:
                raise io.ModelFileError(f"{path}: the file ends inside tensor {entry['name']}")
            a = np.frombuffer(data, dtype=dtype).reshape(entry["shape"])
            if not np.all(np.isfinite(a)):
                raise io.ModelFileError(f"{path}: tensor {entry['name']} contains NaN or inf")
            arrays[ours] = np.array(a, dtype=dtype.newbyteorder("="))
            digest.update(data)
    if checksum is not None and digest.hexdigest() != checksum:
        raise io.ModelFileError(
            f"{path}: the tensors' bytes do not match the sha256 the file was written "
            "with: the file is corrupt"
        )
    if "x_scale" in arrays and not bool(np.all(arrays["x_scale"] > 0)):
        raise io.ModelFileError(f"{path}: the input scale holds a value <= 0")
    return cfg, arrays


def _fail(path: str, why: str) -> io.ModelFileError:
    return io.ModelFileError(f"{path}: {why}")


def _header(f, path: str, size: int, custom: dict | None) -> tuple[dict, dict, int, Any]:
    """The config, each expected tensor's checked header entry (by bpgpu's name, with its
    ``name`` in the file, in state_dict order), where the data start, and the checksum
    (None where a tool that rewrote the file dropped it)."""
    head = f.read(8)
    if len(head) < 8:
        raise _fail(path, "not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER_BYTES:
        raise _fail(
            path, f"the header claims {n} bytes, more than the {MAX_HEADER_BYTES} bpgpu reads"
        )
    if n > size - 8:
        raise _fail(path, f"the header claims {n} bytes; the file holds {size - 8} after it")
    try:
        header = json.loads(f.read(n).decode("utf-8"), object_pairs_hook=_unique)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise _fail(path, f"the header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise _fail(path, "the header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or not isinstance(meta.get(METADATA_KEY), str):
        raise _fail(
            path,
            "a safetensors file without bpgpu's config in its metadata: bpgpu cannot tell "
            "its layers and activations. A torch state_dict? Load it into its module and "
            "convert that with bpgpu.from_torch(module)",
        )
    try:
        cfg = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as e:
        raise _fail(path, f"bpgpu's config in the metadata is not valid JSON ({e})") from None
    cfg = io._check_config(cfg, path, custom)
    if cfg.get("kind") != "model":
        raise _fail(path, "the config is not a model's (a checkpoint is written as .npz)")
    entries = _entries(header, _names(cfg, custom), io.expected_shapes(cfg, custom), cfg, path)
    _check_tiling(entries, size - 8 - n, path)
    checksum = meta.get(CHECKSUM_KEY)
    if checksum is not None and not isinstance(checksum, str):
        raise _fail(path, f"metadata {CHECKSUM_KEY} is not text")
    return cfg, entries, 8 + n, checksum


def _unique(pairs: list) -> dict:
    """A JSON object whose names are each given once (two entries of one tensor name
    would let the file say two things)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = [k for k, _ in pairs]
        raise ValueError(f"the name {next(k for k in seen if seen.count(k) > 1)!r} repeats")
    return out


def _entries(header: dict, names: dict, shapes: dict, cfg: dict, path: str) -> dict[str, dict]:
    """Each tensor's header entry, checked: names, dtype, shape and byte count."""
    want = set(names.values())
    if set(header) != want:
        extra, missing = sorted(set(header) - want), sorted(want - set(header))
        raise _fail(
            path,
            "tensors do not match the config"
            + (f"; unexpected: {', '.join(map(str, extra))}" if extra else "")
            + (f"; missing: {', '.join(missing)}" if missing else ""),
        )
    itemsize = np.dtype(cfg["dtype"]).itemsize
    entries = {}
    for ours, theirs in names.items():
        e = header[theirs]
        if not isinstance(e, dict):
            raise _fail(path, f"tensor {theirs}: its entry is not an object")
        if e.get("dtype") != DTYPES[cfg["dtype"]]:
            raise _fail(
                path,
                f"tensor {theirs}: dtype {e.get('dtype')!r} where the config's "
                f"{cfg['dtype']} is {DTYPES[cfg['dtype']]}",
            )
        shape = e.get("shape")
        if not isinstance(shape, list) or tuple(shape) != shapes[ours]:
            raise _fail(path, f"tensor {theirs}: shape {shape}, the config implies {shapes[ours]}")
        offs = e.get("data_offsets")
        if not (
            isinstance(offs, list) and len(offs) == 2 and all(type(o) is int for o in offs)
        ) or not (0 <= offs[0] <= offs[1]):
            raise _fail(path, f"tensor {theirs}: data_offsets {offs!r} is not [begin, end]")
        if offs[1] - offs[0] != itemsize * int(np.prod(shapes[ours], dtype=np.int64)):
            raise _fail(
                path, f"tensor {theirs}: {offs[1] - offs[0]} bytes for shape {shapes[ours]}"
            )
        entries[ours] = {"name": theirs, "shape": shapes[ours], "data_offsets": offs}
    return entries


def _check_tiling(entries: dict, data_bytes: int, path: str) -> None:
    """The tensors' byte ranges cover the data from 0 to its end, back to back."""
    end = 0
    for e in sorted(entries.values(), key=lambda e: e["data_offsets"]):
        lo, hi = e["data_offsets"]
        if lo != end:
            why = "overlaps the one before" if lo < end else "leaves a gap before it"
            raise _fail(path, f"tensor {e['name']} {why} (offset {lo}, expected {end})")
        end = hi
    if end != data_bytes:
        raise _fail(path, f"the tensors hold {end} bytes, the file {data_bytes} after its header")
