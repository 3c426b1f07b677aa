"""A restricted unpickler for dataset files.

Dataset pickles (DEAP's ``sXX.dat``, the dicts inside SEED-V's ``.npz``) only
need numpy arrays, dtypes, scalars and builtin containers. Every other global a
pickle names is refused with a :class:`DataError` before it can be called, so a
downloaded file cannot run code.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from moodops.components.errors import DataError

# Both the numpy<2 module paths (``numpy.core``) that old pickles name and the
# numpy>=2 ones (``numpy._core``) map to the same functions.
_ALLOWED: dict[tuple[str, str], Any] = {}
for _prefix in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_prefix}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(f"{_prefix}.multiarray", "scalar")] = _multiarray.scalar
    _ALLOWED[(f"{_prefix}.numeric", "_frombuffer")] = _numeric._frombuffer
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = np.dtype


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1").
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


def _empty_bytes(*args: object) -> bytes:
    # Python 3 writes an empty bytes object (an empty array's buffer) into protocol 0-2 pickles as bytes().
    if args:
        raise pickle.UnpicklingError("bytes() with arguments is not allowed")
    return b""


_ALLOWED[("_codecs", "encode")] = _latin1_encode
_ALLOWED[("__builtin__", "bytes")] = _empty_bytes
_ALLOWED[("builtins", "bytes")] = _empty_bytes
# numpy >= 1.25 pickles dtypes by their class, e.g. numpy.dtypes.Float64DType
for _name in dir(np.dtypes):
    if _name.endswith("DType"):
        _ALLOWED[("numpy.dtypes", _name)] = getattr(np.dtypes, _name)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1", fix_imports=True)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self._source}: refused to unpickle global '{module}.{name}' "
                "(only numpy arrays are allowed in dataset files)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self._source}: refused persistent id {pid!r} in pickle")


def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only what rebuilds numpy arrays.

    Truncated or corrupt files raise :class:`DataError` naming the file.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _load(f, str(path))
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e.strerror or e})") from None


def loads_pickle(data: bytes, source: str) -> Any:
    """Unpickle bytes (e.g. a member of an archive) with the same restrictions."""
    return _load(io.BytesIO(data), source)


def _load(f: Any, source: str) -> Any:
    try:
        return RestrictedUnpickler(f, source).load()
    except DataError:
        raise
    except EOFError:
        raise DataError(f"{source}: truncated pickle (file ended before the data did)") from None
    except (pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, UnicodeDecodeError, MemoryError, OverflowError) as e:
        if "truncated" in str(e):
            raise DataError(f"{source}: truncated pickle (file ended before the data did)") from None
        raise DataError(f"{source}: corrupt pickle ({type(e).__name__}: {e})") from None
