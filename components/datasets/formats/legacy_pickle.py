"""Write numpy arrays as the Python-2 pickles that original dataset releases use.

DEAP's ``sXX.dat`` files were written by Python 2 with numpy 1.x: protocol 2,
``numpy.core.multiarray._reconstruct`` and the raw array bytes as a py2 ``str``
(opcode BINSTRING). Python 3 can only read them with ``encoding='latin1'``. This
writer emits that exact opcode stream so synthetic files exercise the real
loading path, including the latin-1 string payload.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import BinaryIO

import numpy as np


def _short_binstring(s: bytes) -> bytes:
    assert len(s) < 256
    return b"U" + bytes([len(s)]) + s


def _binstring(s: bytes) -> bytes:
    return (b"U" + bytes([len(s)]) + s) if len(s) < 256 else b"T" + struct.pack("<I", len(s)) + s


def _int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    return b"J" + struct.pack("<i", v)


def _tuple(items: list[bytes]) -> bytes:
    if len(items) == 0:
        return b")"
    if len(items) <= 3:
        return b"".join(items) + {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(items)]
    return b"(" + b"".join(items) + b"t"


def _array(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">" or a.dtype.kind not in "fiub":
        raise ValueError(f"cannot write dtype {a.dtype} as a legacy pickle")
    order = "|" if a.dtype.itemsize == 1 else "<"
    dtype = (
        b"cnumpy\ndtype\n"
        + _tuple([_short_binstring(a.dtype.str[1:].encode()), _int(0), _int(1)])
        + b"R"
        + _tuple([_int(3), _short_binstring(order.encode()), b"N", b"N", b"N", _int(-1), _int(-1), _int(0)])
        + b"b"
    )
    state = _tuple([_int(1), _tuple([_int(int(n)) for n in a.shape]), dtype, b"\x89", _binstring(a.tobytes())])
    return (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + _tuple([b"cnumpy\nndarray\n", _tuple([_int(0)]), _short_binstring(b"b")])
        + b"R"
        + state
        + b"b"
    )


def dump_py2(obj: Mapping[str, np.ndarray], f: BinaryIO) -> None:
    """Write a dict of str → ndarray as a Python-2 / numpy-1 protocol-2 pickle."""
    f.write(b"\x80\x02}(")
    for key, value in obj.items():
        f.write(_short_binstring(key.encode("ascii")))
        f.write(_array(value))
    f.write(b"u.")
