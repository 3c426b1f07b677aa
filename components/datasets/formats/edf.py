"""A small EDF+ writer: continuous recordings (EDF+C) with annotations.

The file holds 16-bit samples in 1-s data records. Every EEG signal's
physical range is its own minimum and maximum (rounded outward to what fits
the header's 8 characters), its digital range -32768…32767, so the
quantisation step is ``(max - min) / 65535``. A last ``EDF Annotations``
signal carries, in each record, the record's time-keeping TAL and the
annotations whose onset falls in that second (TAL = time-stamped annotation
list: ``+onset\\x15duration\\x14description\\x14\\x00``).

The file is written under a temporary name beside the target and renamed
into place, so a reader never sees half a file.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from moodops.components.errors import ConfigError

logger = logging.getLogger(__name__)

DIGITAL_MIN = -32768
DIGITAL_MAX = 32767
ANNOTATION_LABEL = "EDF Annotations"
#: EDF+ needs a start date; a fixed one keeps written files byte-identical across runs.
START_DATE = "01.01.00"
START_TIME = "00.00.00"


def _field(value: str, width: int) -> bytes:
    """One header field: printable ASCII, left-aligned, space-padded to ``width``."""
    text = str(value)
    if len(text) > width or not text.isascii() or not text.isprintable():
        raise ConfigError(f"EDF header field '{text}' must be printable ASCII of at most {width} characters")
    return text.ljust(width).encode("ascii")


def _number(value: float, width: int = 8, round_up: bool | None = None) -> str:
    """``value`` in at most ``width`` characters; ``round_up`` True/False rounds outward (max/min)."""
    if float(value).is_integer() and len(str(int(value))) <= width:
        return str(int(value))
    magnitude = len(str(int(abs(value)))) + (1 if value < 0 else 0)
    for decimals in range(max(width - magnitude - 1, 0), -1, -1):
        scale = 10.0 ** decimals
        scaled = value * scale
        rounded = math.ceil(scaled) if round_up else math.floor(scaled) if round_up is False else round(scaled)
        text = f"{rounded / scale:.{decimals}f}"
        if decimals:
            text = text.rstrip("0").rstrip(".")
        if len(text) <= width:
            return text
    raise ConfigError(f"EDF header: the value {value} does not fit in {width} characters")


def _tal_time(seconds: float, sign: bool) -> str:
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return (("+" if seconds >= 0 else "") + text) if sign else text


def _physical_range(channel: np.ndarray) -> tuple[str, str]:
    low, high = float(channel.min()), float(channel.max())
    if high - low < 1e-6 * max(1.0, abs(low), abs(high)):  # a flat channel still needs max > min
        low, high = low - 1.0, high + 1.0
    return _number(low, round_up=False), _number(high, round_up=True)


def _annotation_records(annotations: Sequence[tuple[float, float, str]], n_records: int) -> list[bytes]:
    """The bytes of the annotation signal in each record (time-keeping TAL first)."""
    records = [f"+{r}\x14\x14\x00".encode() for r in range(n_records)]
    for onset, duration, description in annotations:
        onset, duration, description = float(onset), float(duration), str(description)
        if not (math.isfinite(onset) and math.isfinite(duration)) or onset < 0 or duration < 0:
            raise ConfigError(f"EDF annotation '{description}' must have a finite onset and duration >= 0. "
                              f"Got onset={onset}, duration={duration} instead.")
        if not description or any(c in description for c in "\x00\x14\x15"):
            raise ConfigError(f"EDF annotation description {description!r} must be non-empty text without "
                              f"the TAL separators \\x00, \\x14, \\x15")
        tal = _tal_time(onset, sign=True)
        if duration > 0:
            tal += "\x15" + _tal_time(duration, sign=False)
        record = min(int(onset), n_records - 1)
        records[record] += f"{tal}\x14{description}\x14\x00".encode()
    return records


def write_edf(path: str | Path, data_uV: np.ndarray, sfreq: float, ch_names: Sequence[str],
              annotations: Sequence[tuple[float, float, str]] = ()) -> Path:
    """Write EEG in microvolts as an EDF+C file with 1-s records; return the path.

    Parameters
    ----------
    path : path
        The file to write (replaced if present).
    data_uV : ndarray, shape (n_channels, n_times)
        Finite samples in µV (physical dimension ``uV``).
    sfreq : float
        Sampling rate; must be a whole number of samples per second (1-s
        records). A last incomplete second is padded with zeros.
    ch_names : sequence of str
        One label per channel, at most 16 ASCII characters, written as given.
    annotations : sequence of (onset_s, duration_s, description)
        Stored as TALs; a duration of 0 is written without a duration.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    data = np.asarray(data_uV, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] < 1:
        raise ConfigError(f"{path}: EDF data must have shape (n_channels, n_times). Got {data.shape} instead.")
    if not np.isfinite(data).all():
        raise ConfigError(f"{path}: EDF data holds non-finite values")
    n_channels, n_times = data.shape
    if len(ch_names) != n_channels:
        raise ConfigError(f"{path}: {len(ch_names)} channel names for {n_channels} channels")
    rate = float(sfreq)
    if not math.isfinite(rate) or rate <= 0 or not rate.is_integer():
        raise ConfigError(f"{path}: EDF with 1-s records needs a whole sampling rate. Got {sfreq} instead.")
    per_record = int(rate)
    n_records = math.ceil(n_times / per_record)
    if n_records * per_record != n_times:
        logger.warning("%s: %d samples are not whole seconds at %g Hz; the last record is padded with zeros",
                       path, n_times, rate)
        data = np.pad(data, ((0, 0), (0, n_records * per_record - n_times)))

    tals = _annotation_records(annotations, n_records)
    annotation_samples = max(len(t) for t in tals) // 2 + 1
    ranges = [_physical_range(channel) for channel in data]
    physical_min = np.array([float(lo) for lo, _ in ranges])
    physical_max = np.array([float(hi) for _, hi in ranges])
    gain = (physical_max - physical_min) / (DIGITAL_MAX - DIGITAL_MIN)
    digital = np.rint((data - physical_min[:, None]) / gain[:, None] + DIGITAL_MIN)
    digital = np.clip(digital, DIGITAL_MIN, DIGITAL_MAX).astype("<i2")

    n_signals = n_channels + 1
    labels = [str(n) for n in ch_names] + [ANNOTATION_LABEL]
    signal_fields = [
        (labels, 16),
        (["AgAgCl electrode"] * n_channels + [""], 80),
        (["uV"] * n_channels + [""], 8),
        ([lo for lo, _ in ranges] + ["-1"], 8),
        ([hi for _, hi in ranges] + ["1"], 8),
        ([str(DIGITAL_MIN)] * n_signals, 8),
        ([str(DIGITAL_MAX)] * n_signals, 8),
        ([""] * n_signals, 80),
        ([str(per_record)] * n_channels + [str(annotation_samples)], 8),
        ([""] * n_signals, 32),
    ]
    header = b"".join([
        _field("0", 8), _field("X X X X", 80), _field("Startdate 01-JAN-2000 X X X", 80),
        _field(START_DATE, 8), _field(START_TIME, 8), _field(str(256 * (n_signals + 1)), 8),
        _field("EDF+C", 44), _field(str(n_records), 8), _field("1", 8), _field(str(n_signals), 4),
    ] + [_field(value, width) for values, width in signal_fields for value in values])

    annotation_block = np.zeros((n_records, annotation_samples * 2), dtype=np.uint8)
    for r, tal in enumerate(tals):
        annotation_block[r, :len(tal)] = np.frombuffer(tal, dtype=np.uint8)
    signals = digital.reshape(n_channels, n_records, per_record).transpose(1, 0, 2).reshape(n_records, -1)
    records = np.concatenate([signals.view(np.uint8), annotation_block], axis=1)

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as f:
            f.write(header)
            f.write(records.tobytes())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
