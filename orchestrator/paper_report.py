"""The paper-vs-run table that ends `moodops pipeline run PRESET`.

A preset's ``paper:`` block gives, per stage, the value the paper reports (``mean``
and ``std`` in %, ``std`` null where the paper prints no spread) and the table row
it comes from. For every stage with such an entry the report sets this run's mean
and spread beside it: the difference (this run − paper, in percentage points),
and whether the paper's mean lies inside this run's mean ± std. The spread of a
run is the population std over its test subjects (or subject groups); a single
split has no spread, so "inside" cannot be judged there and says so. The papers'
± are not all the same thing either (over subjects, over subjects and sessions,
or over repeated runs), so the report prints what each side's ± is. When any
stage ran on synthetic data the report's first line says the numbers are not
comparable with the paper's.

A stage can carry several of the paper's values, one per metric (Zheng et al.
report ACC and F1 for every row): ``stages: {NAME: [{metric: accuracy, mean, std,
row}, {metric: f1, …}]}``; the report then has one row per (stage, metric).
"""
from __future__ import annotations

import csv
import io
from typing import Any

SYNTHETIC_WARNING = ("These numbers come from synthetic data: they exercise the protocol and are not comparable "
                     "with the paper's.")
COLUMNS = ("stage", "metric", "paper_row", "paper_mean", "paper_std", "run_mean", "run_std", "run_spread", "difference",
           "paper_inside_run_spread")


#: The run metrics a paper value can be set beside (``test_<metric>_mean`` of a run stage).
PAPER_METRICS = ("accuracy", "macro_f1", "f1")
METRIC_NAMES = {"accuracy": "ACC", "macro_f1": "macro-F1", "f1": "F1"}


def paper_entries(paper: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    """The paper's values for ``stage``: a list of ``{metric, mean, std, row}`` (``metric`` filled in from the
    block's own where an entry names none); empty when the paper reports none for it."""
    value = (paper.get("stages") or {}).get(stage)
    if not value:
        return []
    entries = value if isinstance(value, list) else [value]
    return [{**e, "metric": e.get("metric") or paper.get("metric", "accuracy")} for e in entries]


def _metrics(rows: list[dict[str, Any]], paper: dict[str, Any]) -> str:
    """'accuracy' or 'accuracy and f1': the metrics the rows compare."""
    names = list(dict.fromkeys(r["metric"] for r in rows)) or [paper.get("metric", "accuracy")]
    return " and ".join(names)


def no_spread(metrics: dict[str, float]) -> str:
    """Why a run's score has no ± : one split, or several folds that all test one subject (per-subject on a
    one-subject copy: the papers' ± is over subjects)."""
    folds = int(metrics.get("n_folds", 1))
    return "one split: no spread" if folds <= 1 else f"{folds} folds of one test subject: no spread over subjects"


def _row(stage: str, reported: dict[str, Any], metrics: dict[str, float], synthetic: bool) -> dict[str, Any] | None:
    metric = reported["metric"]
    mean = metrics.get(f"test_{metric}_mean")
    if mean is None:
        return None
    groups = int(metrics.get("n_subject_groups", 1))
    std = 100 * metrics.get(f"test_{metric}_std", 0.0) if groups > 1 else None
    run_mean = 100 * mean
    diff = run_mean - reported["mean"]
    inside = None if std is None else bool(abs(diff) <= std)
    return {
        "stage": stage, "metric": metric, "paper_row": reported.get("row", ""), "paper_mean": reported["mean"],
        "paper_std": reported.get("std"), "run_mean": run_mean, "run_std": std,
        "run_spread": f"std over {groups} test subjects" if std is not None else no_spread(metrics),
        "difference": diff, "paper_inside_run_spread": inside, "synthetic": synthetic,
    }


def paper_rows(paper: dict[str, Any], outcomes: list, synthetic: dict[str, bool]) -> list[dict[str, Any]]:
    """One row per (stage, metric) the paper reports a value for and this pipeline ran (or reused); values
    in %. A metric the run does not have (``f1`` of a multi-class run) gives no row."""
    rows = []
    for o in outcomes:
        for reported in paper_entries(paper, o.name):
            row = _row(o.name, reported, o.metrics, synthetic.get(o.name, False))
            if row is not None:
                rows.append(row)
    return rows


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def _inside(value: bool | None) -> str:
    return "n/a (no spread)" if value is None else ("yes" if value else "no")


def to_markdown(rows: list[dict[str, Any]], paper: dict[str, Any]) -> str:
    metric = _metrics(rows, paper)
    several = len({r["metric"] for r in rows}) > 1
    lines = []
    if any(r["synthetic"] for r in rows):
        lines += [SYNTHETIC_WARNING, ""]
    lines += [f"Paper: {paper.get('source', '')}; {metric} in %. The paper's ± is its own (see its table); this "
              "run's ± is the population std over test subjects.", "",
              "| stage | " + ("metric | " if several else "") + "paper row | paper | this run | this run − paper | "
              "paper inside this run's ± |",
              "| --- | " + ("--- | " if several else "") + "--- | ---: | ---: | ---: | --- |"]
    for r in rows:
        cell = f"{METRIC_NAMES.get(r['metric'], r['metric'])} | " if several else ""
        lines.append(f"| {r['stage']} | {cell}{r['paper_row']} | {_pm(r['paper_mean'], r['paper_std'])} | "
                     f"{_pm(r['run_mean'], r['run_std'])} | {r['difference']:+.2f} | "
                     f"{_inside(r['paper_inside_run_spread'])} |")
    others = paper.get("rows") or []
    if others:
        lines += ["", "The paper's other rows (no stage here): " + "; ".join(
            f"{o['method']} {_pm(o['mean'], o.get('std')) if o.get('mean') is not None else '–'}" for o in others)]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS, "synthetic"], lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return out.getvalue()


def to_terminal(rows: list[dict[str, Any]], paper: dict[str, Any]) -> list[str]:
    """The table as terminal lines (the warning first on synthetic data)."""
    lines = [SYNTHETIC_WARNING] if any(r["synthetic"] for r in rows) else []
    lines.append(f"paper vs this run ({_metrics(rows, paper)} %, {paper.get('source', '')}):")
    several = len({r["metric"] for r in rows}) > 1
    width = max([len(r["stage"]) for r in rows] + [5])
    mw = 10 if several else 0

    def metric(r: dict[str, Any]) -> str:
        return f"{METRIC_NAMES.get(r['metric'], r['metric']):<{mw}}" if several else ""

    head = f"{'metric':<{mw}}" if several else ""
    lines.append(f"  {'stage':<{width}}  {head}{'paper':>14}  {'this run':>14}  {'diff':>7}  paper inside run ±")
    for r in rows:
        lines.append(f"  {r['stage']:<{width}}  {metric(r)}{_pm(r['paper_mean'], r['paper_std']):>14}  "
                     f"{_pm(r['run_mean'], r['run_std']):>14}  {r['difference']:>+7.2f}  "
                     f"{_inside(r['paper_inside_run_spread'])}")
    return lines
