"""Benchmark: every eye-using variant, per-subject on the realistic synthetic SEED-IV, beside a plain
window-level logistic regression.

    .venv/bin/python tests/benchmarks/bench_eye_baselines.py [--subjects 1-3] [--epochs 30]
        [--variants mv_sstma:eye,mood_reader:stib_eye_mlf,...] [--set val_strategy=none]

The check that would have caught the within-subject failure seen on real
SEED-IV eye features (deep models near chance, a logistic regression at
0.64): each variant runs as a user would run it,

    moodops run per-subject --dataset seed-iv --synthetic --model M --variant V --subjects S

with its defaults (stratified validation and min_epochs; MV-SSTMA: no
validation part, the last of its fixed epochs, as its paper trains), and is set beside a
scikit-learn logistic regression on single 4-s windows of the same trials
(first 16 trials of each session train, last 8 test; NaN imputed with the
training mean and z-scoring fit on the training trials; no tuning), averaged
per subject as moodops averages. Two references: eye features alone (for the
eye-only variants) and eye + DE concatenated (for the fused ones). A variant
passes when its mean accuracy is at least the reference's minus the
variant's standard deviation over subjects.

Results: tests/benchmarks/results/eye-baselines-seed-iv.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402

MOODOPS = str(Path(sys.executable).with_name("moodops"))
VARIANTS = ("linear:eye,svm:eye,mv_sstma:eye,linear:eeg_eye,svm:eeg_eye,mood_reader:stib_eye_cf,"
            "mood_reader:stib_eye_mlf,mv_sstma:concat,mv_sstma:attention")


def logistic_reference(root: Path, subjects: list[int], train_trials: int = 16) -> dict[str, dict[str, float]]:
    """Window-level logistic regression per (subject, session): eye alone and eye + DE."""
    from sklearn.linear_model import LogisticRegression

    from moodops.components.datasets import DATASETS

    dataset = DATASETS.get("seed-iv")(root, subjects=subjects, modalities=["eye"])
    out: dict[str, dict[str, float]] = {}
    for inputs in ("eye", "eeg_eye"):
        per_subject = []
        for subject in subjects:
            recordings = dataset.load_precomputed(subject, "de_LDS")
            scores = []
            for session in sorted({r.session for r in recordings}):
                trials = sorted((r for r in recordings if r.session == session), key=lambda r: r.trial)
                parts = []
                for part in (trials[:train_trials], trials[train_trials:]):
                    eye = np.concatenate([r.extra["eye"] for r in part])
                    x = eye if inputs == "eye" else np.concatenate(
                        [eye, np.concatenate([r.features.reshape(len(r.features), -1) for r in part])], axis=1)
                    y = np.concatenate([np.full(len(r.extra["eye"]), int(r.labels["emotion"])) for r in part])
                    parts.append((x.astype(np.float64), y))
                (x_train, y_train), (x_test, y_test) = parts
                mean = np.nanmean(x_train, axis=0)
                mean = np.where(np.isfinite(mean), mean, 0.0)
                x_train = np.where(np.isnan(x_train), mean, x_train)
                x_test = np.where(np.isnan(x_test), mean, x_test)
                std = x_train.std(axis=0) + 1e-9
                model = LogisticRegression(max_iter=2000).fit((x_train - mean) / std, y_train)
                scores.append(float((model.predict((x_test - mean) / std) == y_test).mean()))
            per_subject.append(float(np.mean(scores)))
        out[inputs] = {"accuracy_mean": float(np.mean(per_subject)), "accuracy_std": float(np.std(per_subject)),
                       "per_subject": per_subject}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", default="1-3")
    parser.add_argument("--epochs", type=int, default=None, help="default: each model's run default (30)")
    parser.add_argument("--variants", default=VARIANTS)
    parser.add_argument("--set", action="append", default=[], help="extra KEY=VALUE for every run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "eye-baselines-seed-iv.json"))
    args = parser.parse_args()
    from moodops.orchestrator.config import parse_int_list

    subjects = parse_int_list(args.subjects)
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MOODOPS_CACHE=str(Path(tmp) / "cache"))
        command = []
        for item in args.variants.split(","):
            model, variant = item.split(":")
            out = Path(tmp) / f"{model}-{variant}.json"
            command = [MOODOPS, "run", "per-subject", "--dataset", "seed-iv", "--synthetic", "--model", model,
                       "--variant", variant, "--subjects", args.subjects, "--output-json", str(out)]
            if args.epochs:
                command += ["--epochs", str(args.epochs)]
            for kv in args.set:
                command += ["--set", kv]
            t0 = time.perf_counter()
            proc = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"{item} failed:\n{proc.stderr[-3000:]}")
            summary = json.loads(out.read_text())
            best = [f["best_epoch"] for f in summary["folds"]]
            runs[item] = {"wall_s": round(wall, 1), "folds": len(summary["folds"]),
                          "accuracy_mean": summary["aggregate"]["test_accuracy_mean"],
                          "accuracy_std": summary["aggregate"]["test_accuracy_std"],
                          "macro_f1_mean": summary["aggregate"]["test_macro_f1_mean"],
                          "best_epoch_min": min(best), "best_epoch_median": float(np.median(best)),
                          "folds_with_notes": len(summary.get("fold_notes", {}))}
            print(item, json.dumps(runs[item]), flush=True)
        root = next((Path(tmp) / "cache" / "synthetic").glob("seed-iv-*"))
        reference = logistic_reference(root, subjects)
    for item, run in runs.items():
        ref = reference["eye" if item.split(":")[1] == "eye" else "eeg_eye"]
        run["reference"] = "eye" if item.split(":")[1] == "eye" else "eeg_eye"
        run["passes"] = bool(run["accuracy_mean"] >= ref["accuracy_mean"] - run["accuracy_std"])
    result = {"benchmark": "eye-using variants, per-subject on the realistic synthetic SEED-IV, beside a "
                           "window-level logistic regression",
              "command": " ".join(["moodops", *command[1:command.index("--output-json")]]).replace(
                  f"--model {command[command.index('--model') + 1]} --variant {command[command.index('--variant') + 1]}",
                  "--model M --variant V"),
              "chance": 0.25, "logistic_regression": reference, "runs": runs, "machine": machine()}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
