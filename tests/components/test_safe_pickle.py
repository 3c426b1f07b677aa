"""The restricted unpickler: loads numpy-only pickles, refuses everything else."""
from __future__ import annotations

import builtins
import io
import os
import pickle

import numpy as np
import pytest

from moodops.components.datasets.formats.legacy_pickle import dump_py2
from moodops.components.datasets.formats.safe_pickle import load_pickle, loads_pickle
from moodops.components.errors import DataError


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "labels": np.round(rng.uniform(1, 9, size=(5, 4)), 2),
        "data": rng.standard_normal((5, 3, 300)).astype(np.float32),  # > 255 bytes: BINSTRING 'T'
        "small": np.arange(6, dtype=np.int16).reshape(2, 3),  # < 256 bytes: SHORT_BINSTRING 'U'
        "bytes": np.array([0, 7, 200, 255], dtype=np.uint8),
        "flags": np.array([True, False, True]),
        "wide": np.arange(4, dtype=np.int64) * (1 << 40),
    }


def _assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        assert isinstance(b[key], np.ndarray), key
        assert b[key].dtype == a[key].dtype, key
        assert b[key].shape == a[key].shape, key
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)


# --------------------------------------------------------------------------- legacy (py2) pickles


def test_dump_py2_writes_a_protocol_2_pickle_with_binstring_payload():
    buf = io.BytesIO()
    dump_py2(_arrays(), buf)
    raw = buf.getvalue()
    assert raw.startswith(b"\x80\x02")
    assert raw.endswith(b".")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw  # the numpy-1 module path, as in DEAP


def test_legacy_pickle_loads_identically_via_load_pickle_and_plain_pickle(tmp_path):
    arrays = _arrays()
    path = tmp_path / "s01.dat"
    with path.open("wb") as f:
        dump_py2(arrays, f)

    safe = load_pickle(path)
    with path.open("rb") as f:
        plain = pickle.load(f, encoding="latin1")

    _assert_same(arrays, safe)
    _assert_same(arrays, plain)
    _assert_same(plain, safe)


def test_legacy_pickle_needs_latin1_in_plain_pickle(tmp_path):
    # Guards that the writer really produces py2 str payloads (the reason for latin1).
    buf = io.BytesIO()
    dump_py2({"data": np.full((2, 200), 1.5, np.float64)}, buf)
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(buf.getvalue())  # default encoding='ASCII'
    assert np.all(loads_pickle(buf.getvalue(), "mem")["data"] == 1.5)


def test_dump_py2_refuses_big_endian_and_object_arrays():
    with pytest.raises(ValueError, match="legacy pickle"):
        dump_py2({"x": np.zeros(3, dtype=">f8")}, io.BytesIO())
    with pytest.raises(ValueError, match="legacy pickle"):
        dump_py2({"x": np.array(["a"], dtype=object)}, io.BytesIO())


# --------------------------------------------------------------------------- python 3 pickles


@pytest.mark.parametrize("protocol", range(6))
def test_python3_pickle_of_arrays_and_scalars_loads(protocol, tmp_path):
    obj = {
        "data": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "labels": np.linspace(1.0, 9.0, 8).reshape(2, 4),
        "ints": np.array([-3, 0, 5], dtype=np.int64),
        "u8": np.array([1, 255], dtype=np.uint8),
        "bool": np.array([True, False]),
        "f64": np.float64(2.5),
        "f32": np.float32(-1.25),
        "i64": np.int64(-7),
        "b": np.bool_(True),
        "plain": [1, 2.5, "text", (3, None)],
    }
    path = tmp_path / f"p{protocol}.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))

    out = load_pickle(path)

    assert set(out) == set(obj)
    for key in ("data", "labels", "ints", "u8", "bool"):
        assert isinstance(out[key], np.ndarray)
        assert out[key].dtype == obj[key].dtype
        np.testing.assert_array_equal(out[key], obj[key])
    for key in ("f64", "f32", "i64", "b"):
        assert type(out[key]) is type(obj[key]), key
        assert out[key] == obj[key]
    assert out["plain"] == [1, 2.5, "text", (3, None)]


@pytest.mark.parametrize("protocol", range(6))
def test_python3_pickle_of_bytes_loads(protocol):
    # Protocols 0-2 write bytes as _codecs.encode(str, 'latin1').
    out = loads_pickle(pickle.dumps({"raw": b"\x00\xffabc"}, protocol=protocol), "mem")
    assert out == {"raw": b"\x00\xffabc"}


@pytest.mark.parametrize(
    "protocol", range(6)
)
def test_python3_pickle_of_empty_array_loads(protocol):
    out = loads_pickle(pickle.dumps({"empty": np.zeros((0, 3), np.float32)}, protocol=protocol), "mem")
    assert out["empty"].shape == (0, 3)


# --------------------------------------------------------------------------- refusals


class _System:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Eval:
    def __init__(self, func, code: str) -> None:
        self.func, self.code = func, code

    def __reduce__(self):
        return (self.func, (self.code,))


def _recorded_global(payload: bytes) -> str:
    """The 'module.name' of the first global a pickle names (what the unpickler sees)."""
    import pickletools

    strings = []
    for op, arg, _ in pickletools.genops(payload):
        if op.name == "GLOBAL":
            return arg.replace(" ", ".")
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        if op.name == "STACK_GLOBAL":
            return f"{strings[-2]}.{strings[-1]}"
    raise AssertionError("no global in pickle")


@pytest.mark.parametrize("protocol", [0, 2, 4, pickle.HIGHEST_PROTOCOL])
def test_os_system_pickle_is_refused_and_not_run(protocol, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": _System(f"touch {marker}")}, protocol=protocol)
    recorded = _recorded_global(payload)
    assert recorded in ("posix.system", "os.system")
    path = tmp_path / "s01.dat"
    path.write_bytes(payload)

    with pytest.raises(DataError) as info:
        load_pickle(path)

    message = str(info.value)
    assert str(path) in message
    assert f"'{recorded}'" in message
    assert not marker.exists()


@pytest.mark.parametrize("func", [builtins.eval, builtins.exec], ids=["eval", "exec"])
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_eval_and_exec_pickles_are_refused_and_not_run(func, protocol, tmp_path):
    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    payload = pickle.dumps([_Eval(func, code)], protocol=protocol)
    recorded = _recorded_global(payload)
    # Protocol 2 records the Python 2 name of the builtins module.
    assert recorded in (f"builtins.{func.__name__}", f"__builtin__.{func.__name__}")
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)

    with pytest.raises(DataError) as info:
        load_pickle(path)

    assert str(path) in str(info.value)
    assert f"'{recorded}'" in str(info.value)
    assert not marker.exists()


def test_sanity_the_payloads_do_run_with_plain_pickle(tmp_path):
    # Proves the refusal tests above would notice a permissive unpickler.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_System(f"touch {marker}")))
    assert marker.exists()


def test_persistent_id_is_refused():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "ext" if obj == "external" else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump(["external"])
    with pytest.raises(DataError, match="persistent id"):
        loads_pickle(buf.getvalue(), "mem.pkl")


@pytest.mark.parametrize("encoding", ["utf-8", "rot13", "hex", "base64", "zlib"])
def test_codecs_encode_with_other_encoding_is_refused(encoding):
    # _codecs.encode('...', <encoding>) built by hand: GLOBAL, args tuple, REDUCE.
    payload = (
        b"\x80\x02c_codecs\nencode\nX\x04\x00\x00\x00abcdX"
        + len(encoding).to_bytes(4, "little")
        + encoding.encode()
        + b"\x86R."
    )
    with pytest.raises(DataError) as info:
        loads_pickle(payload, "codec.pkl")
    assert "codec.pkl" in str(info.value)
    assert repr(encoding) in str(info.value)


def test_codecs_encode_with_latin1_is_allowed():
    payload = b"\x80\x02c_codecs\nencode\nX\x04\x00\x00\x00abcdX\x06\x00\x00\x00latin1\x86R."
    assert loads_pickle(payload, "codec.pkl") == b"abcd"


# --------------------------------------------------------------------------- damaged files


def test_truncated_legacy_pickle_raises_data_error_naming_file(tmp_path):
    buf = io.BytesIO()
    dump_py2(_arrays(), buf)
    raw = buf.getvalue()
    path = tmp_path / "s02.dat"
    path.write_bytes(raw[: len(raw) // 2])

    with pytest.raises(DataError) as info:
        load_pickle(path)

    message = str(info.value)
    assert str(path) in message
    assert "truncated" in message or "corrupt" in message


@pytest.mark.parametrize("cut", [1, 2, 5, 40])
def test_pickle_cut_short_at_various_points_raises_data_error(cut, tmp_path):
    raw = pickle.dumps({"data": np.arange(10.0)}, protocol=2)
    path = tmp_path / "cut.pkl"
    path.write_bytes(raw[:cut])
    with pytest.raises(DataError) as info:
        load_pickle(path)
    assert str(path) in str(info.value)
    assert "truncated" in str(info.value) or "corrupt" in str(info.value)


def test_empty_file_raises_data_error(tmp_path):
    path = tmp_path / "empty.dat"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="truncated"):
        load_pickle(path)


@pytest.mark.parametrize(
    "garbage",
    [
        b"this is not a pickle at all",
        b"\x00\x01\x02\x03\xff\xfe\xfd",
        b"PK\x03\x04" + bytes(range(60)),  # a zip header
        np.random.default_rng(7).integers(0, 256, 500, dtype=np.uint8).tobytes(),
        np.random.default_rng(8).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    ],
    ids=["text", "low-bytes", "zip", "random500", "random4096"],
)
def test_garbage_bytes_raise_data_error(garbage, tmp_path):
    path = tmp_path / "garbage.dat"
    path.write_bytes(garbage)
    with pytest.raises(DataError) as info:
        load_pickle(path)
    assert str(path) in str(info.value)


def test_absurd_length_field_raises_data_error(tmp_path):
    path = tmp_path / "huge.dat"
    path.write_bytes(b"\x80\x05\x8e" + b"\xff" * 8 + b".")  # BINBYTES8 of 2**64 - 1 bytes
    with pytest.raises(DataError):
        load_pickle(path)


def test_missing_file_raises_data_error(tmp_path):
    path = tmp_path / "nope.dat"
    with pytest.raises(DataError) as info:
        load_pickle(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_file_raises_data_error(tmp_path):
    with pytest.raises(DataError) as info:
        load_pickle(tmp_path)
    assert str(tmp_path) in str(info.value)
