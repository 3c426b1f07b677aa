"""Missing values (NaN) per modality, as the datasets' ``check`` reports them.

Eye-movement and face features may hold NaN (a window without a blink has no
blink statistics; a face window without a well-tracked frame has no face
features); the EEG loaders refuse NaN (a file holding one is a DataError), so
``check`` reports EEG as :data:`NAN_REFUSED` instead of counting.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: ``check``'s entry for a modality whose loader refuses NaN.
NAN_REFUSED = "refused"


def missing_counts(arrays: Sequence[np.ndarray]) -> dict[str, int]:
    """NaN in one subject's per-trial ``(n_windows, n_features)`` arrays of one modality.

    Returns ``values`` (all values), ``missing`` (the NaN among them),
    ``windows`` (all windows) and ``windows_missing`` (windows with at least
    one NaN).
    """
    nan = [np.isnan(a).reshape(len(a), -1) for a in arrays]
    return {
        "values": int(sum(m.size for m in nan)),
        "missing": int(sum(m.sum() for m in nan)),
        "windows": int(sum(len(m) for m in nan)),
        "windows_missing": int(sum(m.any(axis=1).sum() for m in nan)),
    }
