"""Neuroscan continuous EEG (``.cnt``, SCAN 3/4 "Version 3.0"), as SEED-V's ``EEG_raw/`` ships it.

Layout (little-endian; the field list of the SETUP and ELECTLOC structs in Neuroscan's
``sethead.h``, as Paul Bourke documents it, https://paulbourke.net/dataformats/eeg/, and as
EEGLAB's ``loadcnt.m`` / ``writecnt.m`` read and write it, github.com/sccn/neuroscanio):

- SETUP, 900 bytes. Among its fields: ``rev`` (char[12], byte 0), session ``label``
  (char[20], 205), ``date`` (char[10], "mm/dd/yy", 225), ``time`` (char[12], 235),
  ``nchannels`` (ushort, 370), ``rate`` (ushort, Hz, 376), ``NumSamples`` (ulong, 864),
  ``EventTablePos`` (ulong, byte offset of the event table, 886), ``ContinousSeconds``
  (float, 890), ``ChannelOffset`` (long, 894: SynAmps block size in bytes; 0 or 1 = one
  sample of every channel after another).
- ELECTLOC, 75 bytes per channel: ``lab`` (char[10], 0), ``bad`` (char, 14), ``x_coord`` and
  ``y_coord`` (floats, 19 and 23: display position), ``baseline`` (short, 47),
  ``sensitivity`` (float, 59), ``calib`` (float, 71). A sample in µV is
  ``(value - baseline) · sensitivity · calib / 204.8``.
- The data: 16- or 32-bit integers, sample-multiplexed (ch 0, ch 1, … of sample 0, then of
  sample 1 …), from byte ``900 + 75 · nchannels`` up to ``EventTablePos``. Which width a file
  uses is not in the header: it is what makes ``NumSamples · nchannels`` samples fill the
  data block (MNE's ``data_format="auto"`` rule), or failing that ``ContinousSeconds · rate``.
- The event table (TEEG): type (uchar, 1–3), size (long, bytes of the events that follow),
  offset (long), then the events (8 bytes each for type 1, 19 for types 2 and 3).

:func:`read_cnt` / :class:`CntFile` check the header against the file before MNE
(``mne.io.read_raw_cnt``) reads it, so that a truncated or foreign file is one
:class:`~moodops.components.errors.DataError` line naming the file and the value at fault,
and read samples on demand (a SEED-V session is 66 channels × about 3.4 M samples).
:func:`write_cnt` writes the minimal file MNE reads back (see its docstring).
"""
from __future__ import annotations

import datetime as dt
import math
import os
import struct
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from moodops.components.errors import ConfigError, DataError, invalid_choice

SETUP_BYTES = 900
ELECTRODE_BYTES = 75
#: Byte offsets in SETUP.
_REV, _LABEL, _DATE, _TIME = 0, 205, 225, 235
_NCHANNELS, _RATE, _NUMSAMPLES, _EVENT_TABLE_POS, _SECONDS, _CHANNEL_OFFSET = 370, 376, 864, 886, 890, 894
#: Byte offsets in ELECTLOC.
_LAB, _X, _Y, _BASELINE, _SENSITIVITY, _CALIB = 0, 19, 23, 47, 59, 71
_TEEG = struct.Struct("<Bll")  # event table header: type, size, offset
_EVENT_BYTES = {1: 8, 2: 19, 3: 19}
DATA_FORMATS = ("auto", "int16", "int32")
REVISION = "Version 3.0"
#: Headers claiming more channels than this are taken for garbage rather than read.
MAX_CHANNELS = 1024
#: Samples per chunk while writing (bounds the integer copy in memory).
_WRITE_CHUNK = 1 << 16


class CntData(NamedTuple):
    """Samples read from a ``.cnt`` file.

    data : ndarray of float32, shape (n_channels, n_times), in µV
    sfreq : float, Hz
    ch_names : tuple of str, the file's labels of the rows of ``data``
    """

    data: np.ndarray
    sfreq: float
    ch_names: tuple[str, ...]


def _text(raw: bytes) -> str | None:
    """A NUL-terminated char field as text, or None when it is not printable ASCII."""
    text = raw.split(b"\0", 1)[0]
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    return decoded.strip() if decoded.isprintable() else None


class CntFile:
    """A Neuroscan ``.cnt`` file whose header was checked against its size; samples read on demand.

    Parameters
    ----------
    path : path
    data_format : {"auto", "int16", "int32"}
        Sample width. ``"auto"`` infers it from ``NumSamples`` (MNE's rule) or else from
        ``ContinousSeconds``; pass it when both are wrong.

    Attributes
    ----------
    sfreq : float
    ch_names : tuple of str
        The labels as stored (case kept).
    n_samples : int
        From the event table's position, the reliable count (Bourke).
    n_bytes : int
        2 or 4.
    label : str
        SETUP's session label (may be empty).

    Every problem (a missing, truncated or foreign file, a garbled header, MNE failing) is a
    one-line :class:`DataError` naming the file.
    """

    def __init__(self, path: str | Path, data_format: str = "auto") -> None:
        if data_format not in DATA_FORMATS:
            raise ConfigError(invalid_choice("data_format", data_format, DATA_FORMATS))
        self.path = Path(path)
        self._parse_header(data_format)
        self._raw = self._open_mne()

    # -- header

    def _parse_header(self, data_format: str) -> None:
        path = self.path
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                setup = f.read(SETUP_BYTES)
                if len(setup) < SETUP_BYTES:
                    raise DataError(f"{path}: {size} bytes, shorter than the {SETUP_BYTES}-byte Neuroscan SETUP "
                                    "header: not a .cnt file, or truncated")
                n_channels, = struct.unpack_from("<H", setup, _NCHANNELS)
                if not 1 <= n_channels <= MAX_CHANNELS:
                    raise DataError(f"{path}: the header gives {n_channels} channels (bytes {_NCHANNELS}-"
                                    f"{_NCHANNELS + 1}), expected 1-{MAX_CHANNELS}: not a Neuroscan .cnt file, "
                                    "or a garbled header")
                electrodes = f.read(ELECTRODE_BYTES * n_channels)
                data_start = SETUP_BYTES + ELECTRODE_BYTES * n_channels
                if len(electrodes) < ELECTRODE_BYTES * n_channels:
                    raise DataError(f"{path}: {size} bytes, but its {n_channels} electrode records end at byte "
                                    f"{data_start}: truncated")
                event_pos, = struct.unpack_from("<I", setup, _EVENT_TABLE_POS)
                teeg = b""
                if data_start < event_pos <= size:
                    f.seek(event_pos)
                    teeg = f.read(_TEEG.size)
        except FileNotFoundError:
            raise DataError(f"{path}: file not found") from None
        except IsADirectoryError:
            raise DataError(f"{path}: is a directory, expected a Neuroscan .cnt file") from None
        except OSError as e:
            raise DataError(f"{path}: cannot read file ({e.strerror or e})") from None

        rate, = struct.unpack_from("<H", setup, _RATE)
        if rate == 0:
            raise DataError(f"{path}: the header gives a sampling rate of 0 Hz (bytes {_RATE}-{_RATE + 1})")
        names = []
        for i in range(n_channels):
            name = _text(electrodes[i * ELECTRODE_BYTES + _LAB:i * ELECTRODE_BYTES + _LAB + 10])
            if not name:
                shown = electrodes[i * ELECTRODE_BYTES:i * ELECTRODE_BYTES + 10]
                raise DataError(f"{path}: the label of channel {i + 1} is not a printable name ({shown!r}): "
                                "a garbled header, or not a Neuroscan .cnt file")
            names.append(name)
        if event_pos > size:
            raise DataError(f"{path}: {size} bytes, but the header puts the event table at byte {event_pos}: "
                            "truncated (copy or download the file again)")
        if event_pos <= data_start:
            raise DataError(f"{path}: the header puts the event table at byte {event_pos}, not after the data "
                            f"start (byte {data_start}): a garbled header")
        n_data = event_pos - data_start
        n_header_samples, = struct.unpack_from("<I", setup, _NUMSAMPLES)
        if data_format == "auto":
            widths = [b for b in (2, 4) if n_header_samples > 0 and n_data == n_header_samples * n_channels * b]
            seconds, = struct.unpack_from("<f", setup, _SECONDS)
            if not widths and math.isfinite(seconds) and seconds > 0:
                # NumSamples is not always filled in (Bourke); ContinousSeconds may tell the width instead.
                per_sample = n_data / (n_channels * rate * seconds)
                widths = [b for b in (2, 4) if abs(per_sample - b) < 0.1 * b]
            if not widths:
                raise DataError(f"{path}: neither the header's {n_header_samples} samples nor its {seconds:g} s "
                                f"× {n_channels} channels fill its {n_data}-byte data block in 16 or 32 bits; pass "
                                "data_format='int16' or 'int32'")
            n_bytes = widths[0]
        else:
            n_bytes = 2 if data_format == "int16" else 4
        n_samples, rest = divmod(n_data, n_channels * n_bytes)
        if n_samples < 1 or rest:
            raise DataError(f"{path}: its {n_data}-byte data block is not whole {8 * n_bytes}-bit samples of "
                            f"{n_channels} channels")
        if len(teeg) < _TEEG.size:
            raise DataError(f"{path}: {size} bytes, the event table header at byte {event_pos} is cut off: "
                            "truncated")
        event_type, event_bytes, _ = _TEEG.unpack(teeg)
        if event_type not in _EVENT_BYTES or event_bytes < 0 or event_bytes % _EVENT_BYTES[event_type]:
            raise DataError(f"{path}: the event table at byte {event_pos} has type {event_type} and size "
                            f"{event_bytes}, expected type 1-3 and whole events: a garbled header or data block")
        if event_pos + _TEEG.size + event_bytes > size:
            raise DataError(f"{path}: {size} bytes, but its event table ends at byte "
                            f"{event_pos + _TEEG.size + event_bytes}: truncated")
        self.sfreq = float(rate)
        self.ch_names = tuple(names)
        self.n_samples = int(n_samples)
        self.n_bytes = n_bytes
        self.label = _text(setup[_LABEL:_LABEL + 20]) or ""
        self._size = size

    def _open_mne(self):
        import mne

        try:
            with warnings.catch_warnings():
                # MNE warns about display positions it cannot fit to a sphere and unreadable dates.
                warnings.simplefilter("ignore")
                raw = mne.io.read_raw_cnt(self.path, data_format=f"int{8 * self.n_bytes}", preload=False,
                                          recompute_n_samples=self._size < 2e9, verbose="error")
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - MNE raises RuntimeError, ValueError, struct.error …
            reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise DataError(f"{self.path}: unreadable Neuroscan .cnt file ({type(e).__name__}: {reason})") from None
        if raw.n_times != self.n_samples:
            raise DataError(f"{self.path}: MNE reads {raw.n_times} samples where the header implies "
                            f"{self.n_samples}")
        return raw

    # -- data

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sfreq

    def channel_indices(self, channels: Sequence[str]) -> list[int]:
        """Indices of ``channels`` (names matched case-insensitively), in their order.

        Raises :class:`DataError` naming every channel the file lacks, or a name two of its
        channels share.
        """
        index: dict[str, int] = {}
        for i, name in enumerate(self.ch_names):
            key = name.upper()
            if key in index:
                raise DataError(f"{self.path}: channels {index[key] + 1} and {i + 1} are both named '{name}' "
                                "(names compared case-insensitively)")
            index[key] = i
        missing = [c for c in channels if c.upper() not in index]
        if missing:
            shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
            raise DataError(f"{self.path}: lacks {len(missing)} of the {len(channels)} channels needed ({shown}); "
                            f"it has {len(self.ch_names)}: {', '.join(self.ch_names[:12])}"
                            f"{' …' if len(self.ch_names) > 12 else ''}")
        return [index[c.upper()] for c in channels]

    def read(self, channels: Sequence[str] | None = None, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start:stop`` of ``channels`` (all by default) → float32 µV ``(n_channels, stop - start)``."""
        picks = list(range(len(self.ch_names))) if channels is None else self.channel_indices(channels)
        stop = self.n_samples if stop is None else int(stop)
        start = int(start)
        if not 0 <= start < stop <= self.n_samples:
            raise DataError(f"{self.path}: samples {start}-{stop} asked for, but the recording has "
                            f"{self.n_samples} ({self.duration_s:g} s at {self.sfreq:g} Hz)")
        try:
            volts = self._raw.get_data(picks=picks, start=start, stop=stop, verbose="error")
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - a file changed or cut after its header was read
            raise DataError(f"{self.path}: cannot read samples {start}-{stop} ({type(e).__name__}: {e})") from None
        return (volts * 1e6).astype(np.float32)


def read_cnt(path: str | Path, channels: Sequence[str] | None = None, start: int = 0, stop: int | None = None,
             data_format: str = "auto") -> CntData:
    """Read a Neuroscan ``.cnt`` file (or samples ``start:stop`` of it).

    Parameters
    ----------
    path : path
    channels : sequence of str, optional
        Channel names to read, in this order, matched case-insensitively; all by default.
        A name the file lacks is a :class:`DataError` listing every missing one.
    start, stop : int
        Sample range (``stop`` None: to the end).
    data_format : {"auto", "int16", "int32"}
        See :class:`CntFile`.

    Returns
    -------
    CntData
        ``data`` float32 µV ``(n_channels, n_times)``, ``sfreq``, ``ch_names`` (the file's labels).
    """
    cnt = CntFile(path, data_format)
    picks = list(range(len(cnt.ch_names))) if channels is None else cnt.channel_indices(channels)
    data = cnt.read(channels, start, stop)
    return CntData(data, cnt.sfreq, tuple(cnt.ch_names[i] for i in picks))


def _display_positions(n: int) -> np.ndarray:
    """(n, 2) distinct points in the unit disc (a Vogel spiral): display positions only.

    MNE fits the header's x/y to a sphere; all-zero positions would make that fit divide by 0.
    """
    k = np.arange(n) + 0.5
    radius, angle = np.sqrt(k / n), k * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def write_cnt(path: str | Path, data_uV: np.ndarray, sfreq: float, ch_names: Sequence[str], *,
              data_format: str = "int32", label: str = "", recorded: dt.datetime | None = None) -> Path:
    """Write EEG in µV as a minimal Neuroscan ``.cnt`` file (SETUP ``rev`` "Version 3.0"); return the path.

    Written: in SETUP, ``rev``, the session ``label``, ``date`` and ``time`` (``recorded``,
    default 2000-01-01 00:00:00), ``nchannels``, ``rate``, ``NumSamples``, ``EventTablePos``,
    ``ContinousSeconds``; ``ChannelOffset`` is 0 (sample-multiplexed data). Per channel: ``lab``,
    ``x_coord``/``y_coord`` (display positions on a spiral, not head positions: set a montage by
    name), ``sensitivity`` = 204.8 × the channel's resolution in µV, ``calib`` = 1 and
    ``baseline`` = 0. Every other field is zero (no filter settings, no bad or skipped
    channels, no patient data). The data block holds the samples as ``data_format`` integers,
    each channel at its own resolution, ``peak / (2**(bits - 1) - 1)`` (1 µV for a flat
    channel), so a sample reads back within half of that (plus float32 rounding of the
    resolution). The event table is an empty type-2 table (no events, nothing after it).

    Parameters
    ----------
    path : path
        The file to write, replaced if present (written under a temporary name beside it, then
        renamed, so a reader never sees half a file).
    data_uV : ndarray, shape (n_channels, n_times)
        Finite samples in µV.
    sfreq : float
        A whole number of Hz, 1-65535 (the header holds an unsigned short).
    ch_names : sequence of str
        One label per channel: 1-9 printable ASCII characters, unique ignoring case.
    data_format : {"int32", "int16"}
    label : str
        SETUP's session label, at most 19 printable ASCII characters.
    recorded : datetime, optional
        The session date and time written in the header.
    """
    path = Path(path)
    data = np.asarray(data_uV)
    if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] < 1:
        raise ConfigError(f"{path}: .cnt data must have shape (n_channels, n_times). Got {data.shape} instead.")
    n_channels, n_times = data.shape
    formats = DATA_FORMATS[1:]
    if data_format not in formats:
        raise ConfigError(invalid_choice("data_format", data_format, formats))
    if not 1 <= n_channels <= MAX_CHANNELS:
        raise ConfigError(f"{path}: a .cnt file holds 1-{MAX_CHANNELS} channels. Got {n_channels} instead.")
    if len(ch_names) != n_channels:
        raise ConfigError(f"{path}: {len(ch_names)} channel names for {n_channels} channels")
    for name in ch_names:
        if not (1 <= len(str(name)) <= 9 and str(name).isascii() and str(name).isprintable()):
            raise ConfigError(f"{path}: channel label '{name}' must be 1-9 printable ASCII characters")
    if len({str(n).upper() for n in ch_names}) != n_channels:
        raise ConfigError(f"{path}: channel labels must be unique ignoring case")
    rate = float(sfreq)
    if not (rate.is_integer() and 1 <= rate <= 65535):
        raise ConfigError(f"{path}: the .cnt header holds a whole sampling rate of 1-65535 Hz. Got {sfreq} instead.")
    if not (len(label) <= 19 and label.isascii() and label.isprintable()):
        raise ConfigError(f"{path}: the session label must be at most 19 printable ASCII characters. "
                          f"Got {label!r} instead.")
    if not np.isfinite(data).all():
        raise ConfigError(f"{path}: .cnt data holds non-finite values")

    n_bytes = 4 if data_format == "int32" else 2
    top = 2 ** (8 * n_bytes - 1) - 1
    peak = np.abs(data).max(axis=1).astype(np.float64)
    sensitivity = (204.8 * np.where(peak > 0, peak / top, 1.0)).astype(np.float32)
    # The resolution a reader computes back from the stored float32 (sensitivity · calib / 204.8).
    resolution = sensitivity.astype(np.float64) / 204.8
    data_start = SETUP_BYTES + ELECTRODE_BYTES * n_channels
    event_pos = data_start + n_times * n_channels * n_bytes
    if event_pos >= 2 ** 32:
        raise ConfigError(f"{path}: {n_times} samples × {n_channels} channels do not fit the format's 32-bit "
                          "event table position")

    when = recorded or dt.datetime(2000, 1, 1)
    setup = bytearray(SETUP_BYTES)
    setup[_REV:_REV + len(REVISION)] = REVISION.encode("ascii")
    setup[_LABEL:_LABEL + len(label)] = label.encode("ascii")
    setup[_DATE:_DATE + 8] = when.strftime("%m/%d/%y").encode("ascii")
    setup[_TIME:_TIME + 8] = when.strftime("%H:%M:%S").encode("ascii")
    struct.pack_into("<H", setup, _NCHANNELS, n_channels)
    struct.pack_into("<H", setup, _RATE, int(rate))
    struct.pack_into("<I", setup, _NUMSAMPLES, n_times)
    struct.pack_into("<I", setup, _EVENT_TABLE_POS, event_pos)
    struct.pack_into("<f", setup, _SECONDS, n_times / rate)
    struct.pack_into("<l", setup, _CHANNEL_OFFSET, 0)
    electrodes = bytearray(ELECTRODE_BYTES * n_channels)
    for i, (name, (x, y)) in enumerate(zip(ch_names, _display_positions(n_channels))):
        o = i * ELECTRODE_BYTES
        electrodes[o + _LAB:o + _LAB + len(str(name))] = str(name).encode("ascii")
        struct.pack_into("<ff", electrodes, o + _X, x, y)
        struct.pack_into("<h", electrodes, o + _BASELINE, 0)
        struct.pack_into("<f", electrodes, o + _SENSITIVITY, sensitivity[i])
        struct.pack_into("<f", electrodes, o + _CALIB, 1.0)

    dtype = "<i4" if n_bytes == 4 else "<i2"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(setup)
            f.write(electrodes)
            for a in range(0, n_times, _WRITE_CHUNK):
                chunk = np.asarray(data[:, a:a + _WRITE_CHUNK], dtype=np.float64) / resolution[:, None]
                f.write(np.clip(np.rint(chunk), -top, top).astype(dtype).T.tobytes())
            f.write(_TEEG.pack(2, 0, 0))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
