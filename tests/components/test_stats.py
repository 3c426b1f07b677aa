"""Paired statistics: a planted difference is found, no difference is not, Holm is step-down."""
from __future__ import annotations

import numpy as np
import pytest

from moodops.components.errors import ConfigError
from moodops.components.stats import holm, paired_test


def test_a_planted_difference_is_detected_on_ten_subjects():
    rng = np.random.default_rng(1)
    b = rng.uniform(0.5, 0.9, 10)
    a = b + 0.08 + rng.normal(0, 0.03, 10)
    r = paired_test(a, b)
    assert r.test == "permutation (exact)" and r.p < 0.01 and r.smd > 1
    assert r.mean_diff == pytest.approx(np.mean(a - b))
    assert np.all(a > b)  # all ten differences positive: the exact two-sided p is 2 / 2**10
    assert r.p == pytest.approx(2 / 1024)


def test_no_difference_gives_p_above_005_in_most_seeds():
    above = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        b = rng.uniform(0.5, 0.9, 12)
        a = b + rng.normal(0, 0.05, 12)  # same pipeline quality, noise only
        above += paired_test(a, b).p > 0.05
    assert above >= 34  # about 95 % expected; 34 of 40 leaves room for chance


def test_above_twenty_subjects_it_is_wilcoxon_and_still_finds_the_difference():
    rng = np.random.default_rng(2)
    b = rng.uniform(0.5, 0.9, 30)
    r = paired_test(b + 0.05 + rng.normal(0, 0.05, 30), b)
    assert r.test == "wilcoxon" and r.n == 30 and r.p < 0.01


def test_holm_is_step_down_and_capped():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("a, b, message", [([0.5, 0.6], [0.5], "same subjects"), ([0.5], [0.4], "at least 2"),
                                           ([0.5, np.nan], [0.4, 0.5], "finite")])
def test_bad_scores_are_one_line_errors(a, b, message):
    with pytest.raises(ConfigError, match=message):
        paired_test(a, b)


def test_stouffer_meta_analysis_pools_datasets_that_agree_and_cancels_ones_that_disagree():
    from scipy import stats

    from moodops.components.stats import meta_analysis

    rng = np.random.default_rng(3)
    results = []
    for n in (8, 12):  # two datasets, the same small planted advantage of A
        b = rng.uniform(0.5, 0.7, n)
        results.append(paired_test(b + 0.03 + rng.normal(0, 0.04, n), b))
    m = meta_analysis(results)
    assert m.n_datasets == 2 and m.n_subjects == 20
    assert m.p < min(r.p for r in results)  # agreement across datasets is stronger evidence than either alone
    # the one-sided p-values combined by scipy's Stouffer with weights sqrt(n)
    one = [r.p / 2 if r.mean_diff > 0 else 1 - r.p / 2 for r in results]
    z, _ = stats.combine_pvalues(one, method="stouffer", weights=np.sqrt([8, 12]))
    assert m.z == pytest.approx(z) and m.p == pytest.approx(2 * stats.norm.sf(abs(z)))
    w = np.sqrt([8, 12])
    assert m.smd == pytest.approx(np.sum(w * [r.smd for r in results]) / w.sum())
    opposite = meta_analysis([results[0], paired_test(*reversed_pair(rng, 8))])
    assert opposite.p > m.p  # a dataset pointing the other way weakens the combined evidence
    with pytest.raises(ConfigError, match="at least 2 datasets"):
        meta_analysis(results[:1])


def reversed_pair(rng, n):
    b = rng.uniform(0.5, 0.7, n)
    return b, b + 0.03 + rng.normal(0, 0.04, n)  # B better than A
