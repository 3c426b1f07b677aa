"""`moodops compare` on two real LOSO runs over the same synthetic subjects."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from _browser import Browser, chromium
from _ray_cluster import free_port, moodops_env
from moodops.components.datasets.deap.synthetic_deap import write_synthetic_deap
from moodops.components.errors import ConfigError
from moodops.orchestrator.compare import RunScores, align

MOODOPS = str(Path(sys.executable).parent / "moodops")


def moodops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([MOODOPS, *args], cwd=cwd, env=moodops_env(), capture_output=True, text=True, timeout=300)


@dataclass
class Compared:
    """A store (``path/mlflow.db``) with two LOSO runs (linear, svm) of 4 synthetic subjects and their comparison."""
    path: Path
    ids: list[str]
    proc: subprocess.CompletedProcess  # the `moodops compare` of the two


@pytest.fixture(scope="module")
def compared(tmp_path_factory, shared_ray, _empty_mlflow_store) -> Compared:
    path = tmp_path_factory.mktemp("compared")
    shutil.copyfile(_empty_mlflow_store, path / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:  # the runs join the session's shared Ray (as use_shared_ray)
        mp.setenv("SHARED_RAY_ADDRESS", shared_ray[0])
        mp.setenv("SHARED_RAY_TOKEN", shared_ray[1])
        write_synthetic_deap(path / "deap", n_subjects=4, n_trials=16, seconds=30, seed=2, effect=3.0)
        ids = []
        for model in ("linear", "svm"):
            out = path / f"{model}.json"
            proc = moodops("run", "loso", "--dataset", "deap", "--root", str(path / "deap"), "--model", model,
                           "--output-json", str(out), cwd=path)
            assert proc.returncode == 0, proc.stderr
            ids.append(json.loads(out.read_text())["parent_run_id"])
        return Compared(path, ids, moodops("compare", *ids, cwd=path))


@pytest.fixture(scope="module")
def ui(compared):
    """`moodops ui` serving the compared store: (base URL, the lines it printed first)."""
    port = free_port()
    server = subprocess.Popen([MOODOPS, "ui", "--port", str(port)], cwd=compared.path, env=moodops_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [server.stderr.readline() for _ in range(3)]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # the UI answers once its workers are up
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
                time.sleep(0.5)
        yield base, lines
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_compare_two_loso_runs_prints_the_paired_table_and_logs_a_comparison_run(compared, ui, use_shared_ray):
    from mlflow import MlflowClient

    tmp_path, ids, proc = compared.path, compared.ids, compared.proc
    assert proc.returncode == 0, proc.stderr
    header, row, last = proc.stdout.strip().splitlines()
    assert header.split() == ["A", "B", "n", "A-B", "test", "p", "p_holm", "d_z"]
    assert row.split()[:3] == ["linear/default", "svm/default", "4"] and "permutation (exact)" in row
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    scores = []
    for run_id in ids:  # the table's difference is the mean of the per-subject fold accuracies
        folds = client.search_runs([client.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
        scores.append(np.mean([f.data.metrics["test_accuracy"] for f in folds]))
    assert float(row.split()[3]) == pytest.approx(scores[0] - scores[1], abs=6e-4)
    # the same runs chosen by experiment and filter (oldest first, as named above)
    chosen = moodops("compare", "--experiment", "moodops", "--filter", "tags.`moodops.model` != 'dgcnn'", cwd=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip().splitlines()[1] == row
    bad = moodops("compare", "--experiment", "moodops", "--filter", "tags.model = = 'x'", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("moodops: error: --filter")
    p = float(row.split()[-3])
    assert p >= 2 / 16  # 4 subjects: no exact two-sided p is smaller
    comparison = last.split()[2]
    run = client.get_run(comparison)
    assert run.info.status == "FINISHED" and run.data.tags["moodops.compared_runs"] == ",".join(ids)
    assert {a.path for a in client.list_artifacts(comparison)} == {
        "comparison.csv", "comparison.md", "paired_subjects.png", "effect_sizes.png"}
    description = run.data.tags["mlflow.note.content"]  # the UI shows the table and links to both runs
    assert row.split()[3] in description and all(f"/runs/{i})" in description for i in ids)
    assert (tmp_path / "mlartifacts").is_dir()  # the default store's artifacts stay beside it

    again = moodops("compare", ids[0], ids[0], cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.strip().splitlines()[-1] == (
        f"moodops: error: run {ids[0]} is named twice; compare different runs")

    # `moodops ui` names both experiments' runs tables, in the UI's machine-learning view, and serves the store.
    base, lines = ui
    experiments = {e.name: e for e in client.search_experiments()}
    for name in ("moodops", "moodops-comparisons"):
        url = f"{base}/#/experiments/{experiments[name].experiment_id}/runs?workflowType=machine_learning"
        assert any(line.split() == [name, url] for line in lines), lines
        assert experiments[name].tags["mlflow.experimentKind"] == "custom_model_development"
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name"
                                "?experiment_name=moodops-comparisons", timeout=10) as response:
        served = json.loads(response.read())
    assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in served["experiment"]["tags"]

    # The same runs exported as MOABB's results table: MOABB's first step (collapse_session_scores: the mean
    # score per pipeline, dataset and subject) gives back each run's per-subject scores.
    import pandas as pd

    from moodops.orchestrator.export import MOABB_COLUMNS

    proc = moodops("export", *ids, "--format", "moabb", "--out", "results.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "8 rows" in proc.stdout
    df = pd.read_csv(tmp_path / "results.csv", dtype={"subject": str, "session": str})
    assert tuple(df.columns) == MOABB_COLUMNS
    assert set(df["pipeline"]) == {"linear/default", "svm/default"} and set(df["session"]) == {"all"}
    assert set(df["dataset"]) == {"deap"} and set(df["channels"]) == {32} and set(df["n_sessions"]) == {1}
    assert (df["time"] > 0).all() and (df["samples"] > 0).all()
    collapsed = df.groupby(["pipeline", "dataset", "subject"], sort=False).mean(numeric_only=True).reset_index()
    for run_id, pipeline, mean in zip(ids, ("linear/default", "svm/default"), scores):
        assert collapsed[collapsed.pipeline == pipeline]["score"].mean() == pytest.approx(mean, abs=1e-12)
    # MOABB itself reads it: its per-dataset statistics pair the same subjects and give the same effect size
    from moabb.analysis.meta_analysis import compute_dataset_statistics

    stats = compute_dataset_statistics(df)
    (moabb_row,) = stats[(stats.pipe1 == "linear/default") & (stats.pipe2 == "svm/default")].to_dict("records")
    assert moabb_row["dataset"] == "deap" and moabb_row["nsub"] == 4
    assert moabb_row["smd"] == pytest.approx(float(row.split()[-1]), abs=6e-3)  # our d_z, printed to 2 decimals
    before = (tmp_path / "results.csv").read_bytes()
    again = moodops("export", ids[0], "--out", "results.csv", cwd=tmp_path)  # nothing overwritten unasked
    assert again.returncode == 2 and "results.csv: exists; pass --overwrite" in again.stderr
    assert (tmp_path / "results.csv").read_bytes() == before
    proc = moodops("export", *ids, "--format", "csv", "--out", "folds.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folds = pd.read_csv(tmp_path / "folds.csv")
    assert len(folds) == 8 and {"accuracy", "macro_f1", "fold", "run_id", "n_train"} <= set(folds.columns)
    assert sorted(folds["fold"].unique()) == [f"subject-{s:02d}" for s in range(1, 5)]


#: A folder: the browser test saves what it looked at there (the README's screenshots were made so).
SCREENSHOTS = os.environ.get("UI_SCREENSHOTS")
#: Clicks every collapsed parent row's expander in MLflow 3.17's runs table; resolves to the number clicked.
EXPAND_PARENTS = """(async () => {
  const buttons = Array.from(document.querySelectorAll('button[data-component-id*="runnamecellrenderer"]'));
  for (const b of buttons) { b.click(); await new Promise(r => setTimeout(r, 500)); }
  return buttons.length;
})()"""


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(chromium() is None, reason="no headless Chromium on PATH (Debian: apt-get install chromium)")
def test_the_mlflow_ui_opens_on_the_runs_table_with_the_parents_their_folds_and_the_comparison(compared, ui):
    """What a new user sees in a real browser: the URL that `moodops ui` prints opens the runs table in
    the model-training view (not the GenAI overview of traces and "evaluation runs"), with both parent
    runs, their dataset, their folds nested beneath them, and the comparison run with its table."""
    from mlflow import MlflowClient

    base, _ = ui
    client = MlflowClient(tracking_uri=f"sqlite:///{compared.path / 'mlflow.db'}")
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    parents = [client.get_run(i) for i in compared.ids]
    comparison = client.get_run(compared.proc.stdout.strip().splitlines()[-1].split()[2])
    shots = Path(SCREENSHOTS) if SCREENSHOTS else compared.path / "screenshots"
    with Browser(chromium()) as page:
        url = f"{base}/#/experiments/{experiments['moodops']}/runs?workflowType=machine_learning"
        text = page.open(url, wait_for=parents[0].info.run_name)
        assert "Evaluation runs" not in text and "Model training" in text
        page.js("document.querySelector('button[aria-label=\"Close\"]')?.click()")  # the assistant's side panel
        for run in parents:
            assert run.info.run_name in text
            digest = run.inputs.dataset_inputs[0].dataset.digest  # the Dataset column is filled
            assert f"deap ({digest})" in text
        assert "subject-01" not in text  # folds are nested under their parent, collapsed
        assert page.js(EXPAND_PARENTS) == 2
        text = page.wait_for("subject-04")
        rows = page.js("Array.from(document.querySelectorAll('a[href*=\"/runs/\"] span')).map(s => s.innerText)")
        assert sorted(rows) == sorted([r.info.run_name for r in parents] + [f"subject-0{k}" for k in range(1, 5)] * 2)
        page.screenshot(shots / "mlflow-runs-table.png")

        url = f"{base}/#/experiments/{experiments['moodops-comparisons']}/runs?workflowType=machine_learning"
        assert "Evaluation runs" not in page.open(url, wait_for=comparison.info.run_name)
        page.screenshot(shots / "mlflow-comparisons.png")
        url = (f"{base}/#/experiments/{experiments['moodops-comparisons']}/runs/{comparison.info.run_id}"
               "?workflowType=machine_learning")
        text = page.open(url, wait_for="Compared runs")
        assert "permutation (exact)" in text  # the description: the table, then a link to each compared run
        links = page.js("Array.from(document.querySelectorAll('a')).map(a => [a.innerText, a.getAttribute('href')])")
        for run, name in zip(parents, ("linear/default", "svm/default")):
            assert [name, f"#/experiments/{experiments['moodops']}/runs/{run.info.run_id}"] in links
        page.screenshot(shots / "mlflow-comparison-run.png")
    assert all((shots / f).stat().st_size > 10_000 for f in
               ("mlflow-runs-table.png", "mlflow-comparisons.png", "mlflow-comparison-run.png"))


def _scores(run_id: str, subjects: list[int], label: str = "valence") -> RunScores:
    tags = {"moodops.dataset": "deap", "moodops.protocol": "loso", "moodops.label": label}
    return RunScores(run_id, run_id, tags, subjects, np.linspace(0.5, 0.9, len(subjects)))


def test_runs_that_do_not_align_are_one_line_errors_naming_the_mismatch():
    with pytest.raises(ConfigError, match="differ in label: 'valence' vs 'arousal'"):
        align([_scores("a", [1, 2, 3]), _scores("b", [1, 2, 3], label="arousal")])
    with pytest.raises(ConfigError, match=r"only one of them has 4"):
        align([_scores("a", [1, 2, 3]), _scores("b", [1, 2, 3, 4])])


def _run(run_id: str, name: str, dataset: str, scores) -> RunScores:
    tags = {"moodops.dataset": dataset, "moodops.protocol": "loso", "moodops.label": "valence"}
    return RunScores(run_id, name, tags, list(range(1, len(scores) + 1)), np.asarray(scores, float))


def test_runs_of_several_datasets_are_compared_per_dataset_and_meta_analysed():
    from moodops.orchestrator.compare import compare, meta_rows, to_markdown

    rng = np.random.default_rng(0)
    deap_b, seed_b = rng.uniform(0.5, 0.7, 10), rng.uniform(0.5, 0.7, 15)
    runs = [_run("a1", "mood_reader/full", "deap", deap_b + 0.05 + rng.normal(0, 0.03, 10)),
            _run("b1", "linear/default", "deap", deap_b),
            _run("b2", "linear/default", "seed", seed_b),  # another order on the second dataset: pairs still match
            _run("a2", "mood_reader/full", "seed", seed_b + 0.05 + rng.normal(0, 0.03, 15))]
    rows = compare(runs)
    assert [(r["dataset"], r["a"], r["b"]) for r in rows] == [("deap", "mood_reader/full", "linear/default"),
                                                              ("seed", "mood_reader/full", "linear/default")]
    (meta,) = meta_rows(rows)
    assert meta["datasets"] == "deap,seed" and meta["n_subjects"] == 25 and meta["smd"] > 0
    assert meta["p"] < min(r["p"] for r in rows)
    assert "Meta-analysis across datasets" in to_markdown(rows, "accuracy", [meta])
    with pytest.raises(ConfigError, match="deap has linear/default, mood_reader/full, seed has linear/default$"):
        compare(runs[:3])
    assert meta_rows(compare(runs[:2])) == []  # one dataset: no meta-analysis


def test_a_pipelines_run_stages_are_selected_through_their_cached_origin(tmp_path):
    """`compare --pipeline ID`: the run stages of a pipeline parent (a reused stage stands for the run it reuses);
    pretraining stages and runs of other pipelines are left out."""
    from mlflow import MlflowClient

    from moodops.orchestrator.compare import select_runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("moodops-pipelines")
    run_tags = {"moodops.protocol": "per-subject", "moodops.dataset": "seed-iv", "moodops.label": "emotion"}
    earlier = client.create_run(exp, tags=run_tags).info.run_id  # a stage of an earlier invocation
    parent = client.create_run(exp, tags={"moodops.kind": "pipeline"}).info.run_id
    client.create_run(exp, tags={"mlflow.parentRunId": parent, "moodops.stage": "pretrain"})
    fresh = client.create_run(exp, tags={"mlflow.parentRunId": parent, "moodops.stage": "t2-eeg", **run_tags})
    client.create_run(exp, tags={"mlflow.parentRunId": parent, "moodops.stage": "t2-concat",
                                 "moodops.cached_from": earlier})
    other = client.create_run(exp, tags={"moodops.kind": "pipeline"}).info.run_id
    client.create_run(exp, tags={"mlflow.parentRunId": other, **run_tags})
    assert sorted(select_runs([], None, None, parent, uri)) == sorted([fresh.info.run_id, earlier])
    with pytest.raises(ConfigError, match="not a pipeline run"):
        select_runs([], None, None, earlier, uri)
    with pytest.raises(ConfigError, match="--filter needs --experiment"):
        select_runs([], None, "tags.x = 'y'", None, uri)
    with pytest.raises(ConfigError, match="found 0 run"):
        select_runs([], "moodops-pipelines", "tags.`moodops.dataset` = 'deap'", None, uri)


def test_compare_on_two_datasets_prints_and_logs_the_meta_analysis(tmp_path):
    """The command on runs of DEAP and SEED (fold runs written straight into a store): a table per dataset
    pair, the meta-analysis line, and meta_analysis.csv in the comparison run."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("moodops", artifact_location=(tmp_path / "mlartifacts").as_uri())
    rng = np.random.default_rng(1)
    ids = []
    for dataset, n in (("deap", 10), ("seed", 12)):
        base = rng.uniform(0.5, 0.7, n)
        for model, scores in (("mood_reader", base + 0.06 + rng.normal(0, 0.03, n)), ("linear", base)):
            parent = client.create_run(exp, tags={"moodops.protocol": "loso", "moodops.dataset": dataset,
                                                  "moodops.label": "valence", "moodops.model": model,
                                                  "moodops.variant": "default"}).info.run_id
            for subject, score in enumerate(scores, start=1):
                fold = client.create_run(exp, tags={"mlflow.parentRunId": parent, "moodops.fold": f"subject-{subject:02d}",
                                                    "moodops.test_subjects": str(subject)}).info.run_id
                client.log_batch(fold, metrics=[Metric("test_accuracy", float(score), 0, 0)])
                client.set_terminated(fold, "FINISHED")
            client.set_terminated(parent, "FINISHED")
            ids.append(parent)
    proc = moodops("compare", *ids, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split() == ["dataset", "A", "B", "n", "A-B", "test", "p", "p_holm", "d_z"]
    assert [line.split()[:4] for line in lines[1:3]] == [["deap", "mood_reader/default", "linear/default", "10"],
                                                        ["seed", "mood_reader/default", "linear/default", "12"]]
    assert lines[3].startswith("meta-analysis over datasets")
    meta = lines[5].split()
    assert meta[:4] == ["mood_reader/default", "linear/default", "2", "22"] and float(meta[6]) < 0.01
    comparison = lines[-1].split()[2]
    assert {a.path for a in client.list_artifacts(comparison)} == {
        "comparison.csv", "comparison.md", "meta_analysis.csv", "paired_subjects.png", "effect_sizes.png"}
    assert client.get_run(comparison).data.tags["moodops.dataset"] == "deap,seed"
