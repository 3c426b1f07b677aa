"""Paired statistics for comparing pipelines over the same subjects (MOABB's practice).

Two pipelines scored on the same n subjects give n paired differences. The
test of "is A better than B" is on those differences:

- n <= 20: the exact sign-flip permutation test (every one of the 2**n ways to
  swap A and B within subjects; ``scipy.stats.permutation_test`` with
  ``permutation_type="samples"``), as MOABB does below 20 subjects;
- n > 20: the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``).

The effect size is the standardised mean difference of paired scores,
d_z = mean(d) / sd(d) (sd with n - 1), and p-values across several pairs are
Holm-corrected (scipy has no Holm step-down, so it is written out here).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moodops.components.errors import ConfigError

EXACT_MAX_SUBJECTS = 20


@dataclass(frozen=True)
class PairedResult:
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float  # mean over subjects of a - b
    p: float
    test: str  # "permutation (exact)" or "wilcoxon"
    smd: float  # d_z = mean(d) / sd(d); nan when every difference is the same


def _mean_diff(x, y, axis):
    return np.mean(x - y, axis=axis)


def paired_test(a, b) -> PairedResult:
    """Two-sided paired test of ``a`` against ``b`` (one score per subject each, the same subject order)."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ConfigError(f"paired scores need the same subjects: got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ConfigError(f"a paired test needs at least 2 subjects, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ConfigError("paired scores must be finite")
    d = a - b
    sd = float(np.std(d, ddof=1))
    smd = float(np.mean(d) / sd) if sd > 0 else float("nan")
    if np.all(d == 0):
        p, test = 1.0, "none (identical scores)"
    elif len(d) <= EXACT_MAX_SUBJECTS:
        res = stats.permutation_test((a, b), _mean_diff, permutation_type="samples", vectorized=True,
                                     n_resamples=np.inf, alternative="two-sided")
        p, test = float(res.pvalue), "permutation (exact)"
    else:
        p, test = float(stats.wilcoxon(a, b).pvalue), "wilcoxon"
    return PairedResult(len(d), float(a.mean()), float(b.mean()), float(d.mean()), min(p, 1.0), test, smd)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the input order."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted


@dataclass(frozen=True)
class MetaResult:
    n_datasets: int
    n_subjects: int
    smd: float  # pooled d_z: the datasets' d_z weighted by sqrt(n subjects)
    z: float  # Stouffer's combined z for "A > B"
    p: float  # two-sided p of that z
    p_one_sided: float  # one-sided p for "A > B"


def meta_analysis(results: list[PairedResult]) -> MetaResult:
    """Combine one pair's paired results over several datasets, as MOABB's meta-analysis does.

    Each dataset's two-sided p becomes a one-sided p for "A > B" (p/2 when A's mean is higher, else
    1 - p/2), the one-sided p-values are combined by Stouffer's method weighted by sqrt(n subjects)
    (``scipy.stats.combine_pvalues(method="stouffer")``), and the pooled effect is the datasets' d_z
    weighted alike. The two-sided p is that of the combined z.
    """
    from scipy import stats

    if len(results) < 2:
        raise ConfigError(f"a meta-analysis needs at least 2 datasets, got {len(results)}")
    weights = np.sqrt([r.n for r in results])
    one_sided = np.array([r.p / 2 if r.mean_diff > 0 else 1 - r.p / 2 for r in results])
    one_sided = np.clip(one_sided, np.nextafter(0.0, 1.0), np.nextafter(1.0, 0.0))  # keep z finite
    z, p_one = stats.combine_pvalues(one_sided, method="stouffer", weights=weights)
    smd = np.array([r.smd for r in results], float)
    pooled = float(np.sum(weights * np.nan_to_num(smd)) / np.sum(weights)) if np.isfinite(smd).any() else float("nan")
    return MetaResult(len(results), int(sum(r.n for r in results)), pooled, float(z),
                      float(2 * stats.norm.sf(abs(z))), float(p_one))
