"""Raw-EEG preprocessing shared by every dataset that ships raw EEG.

Mood Reader §4.1 (Dong et al. 2024): "a bandpass filter with cutoff frequencies of 0.1Hz and 70Hz,
followed by a notch filter at 50Hz, was implemented. Subsequently, the sampling frequency was
reduced to 200Hz from its original rate." :class:`Preprocess` defaults to exactly that; EEGMMIDB
pretraining, SEED-IV raw EEG and SEED-V's CNT recordings go through :func:`preprocess`.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np

from moodops.components.errors import ConfigError, DataError, invalid_choice
from moodops.components.types import Recording

logger = logging.getLogger(__name__)

#: Mains frequencies a notch may remove.
NOTCH_FREQUENCIES = (50.0, 60.0)


def _positive_or_none(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"The '{name}' parameter must be a positive frequency in Hz or None. "
                          f"Got {value!r} instead.")
    return number


@dataclass(frozen=True)
class Preprocess:
    """Raw-EEG preprocessing: band-pass, notch, resample (Mood Reader §4.1's settings by default).

    Parameters
    ----------
    l_freq, h_freq : float or None
        Band-pass edges in Hz (0.1, 70); None leaves that side open.
        ``h_freq`` must stay below half of ``sfreq``; above a recording's own
        Nyquist frequency it is lowered just below it, with a warning.
    notch : {50.0, 60.0, None}
        Mains frequency to notch out (50); skipped where it is at or above a
        recording's Nyquist frequency.
    sfreq : float or None
        Output sampling rate in Hz (200); None keeps each recording's.
    """

    l_freq: float | None = 0.1
    h_freq: float | None = 70.0
    notch: float | None = 50.0
    sfreq: float | None = 200.0

    def __post_init__(self) -> None:
        for name in ("l_freq", "h_freq", "sfreq"):
            object.__setattr__(self, name, _positive_or_none(name, getattr(self, name)))
        if self.notch is not None:
            try:
                notch = float(self.notch)
            except (TypeError, ValueError):
                notch = math.nan
            if notch not in NOTCH_FREQUENCIES:
                raise ConfigError(invalid_choice("notch", self.notch, ("50.0", "60.0", "None")))
            object.__setattr__(self, "notch", notch)
        if self.l_freq is not None and self.h_freq is not None and not self.l_freq < self.h_freq:
            raise ConfigError(f"`l_freq < h_freq` must hold, but got (l_freq={self.l_freq}, h_freq={self.h_freq}).")
        if self.sfreq is not None:
            nyquist = self.sfreq / 2
            for name in ("l_freq", "h_freq"):
                value = getattr(self, name)
                if value is not None and value >= nyquist:
                    raise ConfigError(f"`{name} < sfreq / 2` must hold (the output's Nyquist frequency), "
                                      f"but got ({name}={value}, sfreq={self.sfreq}).")


def preprocess(recording: Recording, config: Preprocess = Preprocess()) -> Recording:
    """Band-pass, notch and resample one recording through MNE (zero-phase FIR filters).

    Parameters
    ----------
    recording : Recording
        Raw EEG in ``data``, shape ``(n_channels, n_times)``.
    config : Preprocess
        The filter and rate settings.

    Returns
    -------
    Recording
        A copy with float32 ``data`` at ``config.sfreq`` (annotations, in
        seconds, unchanged).
    """
    import mne

    if recording.data is None:
        raise DataError(f"subject {recording.subject} session {recording.session} trial {recording.trial}: no raw EEG to preprocess")
    source = float(recording.sfreq)
    nyquist = source / 2
    if config.l_freq is not None and config.l_freq >= nyquist:
        raise DataError(f"subject {recording.subject} session {recording.session} trial {recording.trial}: l_freq {config.l_freq} Hz is at or "
                        f"above the Nyquist frequency ({nyquist:g} Hz) of its {source:g} Hz data")
    h_freq = config.h_freq
    if h_freq is not None and h_freq >= nyquist:
        h_freq = nyquist - max(1.0, 0.05 * nyquist)
        logger.warning("subject %d session %d trial %d: h_freq %g Hz is at or above the Nyquist frequency of %g Hz data; "
                       "low-passing at %g Hz instead", recording.subject, recording.session, recording.trial, config.h_freq, source,
                       h_freq)
    info = mne.create_info(list(recording.ch_names), source, ch_types="eeg", verbose="error")
    raw = mne.io.RawArray(np.asarray(recording.data, dtype=np.float64), info, verbose="error")
    if config.l_freq is not None or h_freq is not None:
        raw.filter(config.l_freq, h_freq, method="fir", phase="zero", fir_design="firwin", verbose="error")
    if config.notch is not None and config.notch < nyquist:
        raw.notch_filter(config.notch, method="fir", phase="zero", fir_design="firwin", verbose="error")
    if config.sfreq is not None and config.sfreq != source:
        raw.resample(config.sfreq, verbose="error")
    return dataclasses.replace(recording, data=raw.get_data().astype(np.float32), sfreq=float(raw.info["sfreq"]))
