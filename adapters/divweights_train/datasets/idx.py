"""The idx file format of MNIST and Fashion-MNIST (reading; the tests hold the writer they use)."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from .base import DatasetFormatError

__all__ = ["IdxFormatError", "read_idx"]


class IdxFormatError(DatasetFormatError):
    """An idx file is malformed (bad magic number, bad header or truncated)."""


# Third byte of the magic number -> big-endian element type.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":  # gzip magic, whatever the file suffix
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an array stored in the idx format (gzipped or raw).

    The idx header is a 4-byte magic number ``0x00 0x00 <type> <ndim>``
    followed by ``ndim`` big-endian ``uint32`` sizes and then the data in
    big-endian, row-major order.

    Parameters
    ----------
    path : str or path-like
        The file; gzip compression is detected from the content.

    Returns
    -------
    numpy.ndarray
        The array in native byte order with the shape from the header.

    Raises
    ------
    IdxFormatError
        On a bad magic number, an unknown element type, a truncated file or
        trailing bytes after the data.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> header = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")  # uint8, 2 x 3
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "a-idx2-ubyte.gz")
    ...     with gzip.open(path, "wb") as fh:
    ...         _ = fh.write(header + bytes(range(6)))
    ...     print(read_idx(path).tolist())
    [[0, 1, 2], [3, 4, 5]]
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise IdxFormatError(f"{path}: cannot read file ({exc})") from exc
    if len(raw) < 4:
        raise IdxFormatError(f"{path}: file too short for an idx header ({len(raw)} bytes)")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise IdxFormatError(f"{path}: bad idx magic number 0x{raw[:4].hex()} (first two bytes must be zero)")
    if type_code not in _IDX_DTYPES:
        raise IdxFormatError(f"{path}: bad idx magic number 0x{raw[:4].hex()} (unknown element type 0x{type_code:02x})")
    if ndim == 0:
        raise IdxFormatError(f"{path}: idx header declares zero dimensions")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IdxFormatError(
            f"{path}: truncated idx header: {ndim} dimensions need {header_len} bytes, file has {len(raw)}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    available = len(raw) - header_len
    if available < expected:
        raise IdxFormatError(
            f"{path}: truncated idx data: header shape {shape} needs {expected} bytes, only {available} present"
        )
    if available > expected:
        raise IdxFormatError(
            f"{path}: {available - expected} unexpected trailing bytes after idx data of shape {shape}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="))
