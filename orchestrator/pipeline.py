"""`moodops pipeline run SPEC`: pretrain → fine-tune/evaluate stages from a YAML spec, with stage caching.

A spec (see ``pipelines/presets/``)::

    name: mood_reader_seed
    description: one line
    stages:
      - name: pretrain
        kind: pretrain          # moodops pretrain keys (PretrainJob)
        config: {method: mbsm, corpus: eegmmidb, epochs: 20}
      - name: finetune
        kind: run               # moodops run keys (RunConfig)
        config: {protocol: split, dataset: seed, model: mood_reader, encoder: ${pretrain.encoder}}

``${STAGE.encoder}`` is the exact model version an earlier pretrain stage
registered (``models:/NAME/VERSION``; ``runs:/ID/encoder`` when it did not
register). Stages run in order as children of one MLflow parent run.

Caching is content-addressed: a stage's key hashes its kind, its config
(without where results go), the keys of the stages it references and a
fingerprint of its data (file names, sizes and modification times under its
root; the generator version for ``--synthetic``). A FINISHED run in the
tracking store tagged with that key is the stage's output: the stage is then
skipped and its earlier results are reused (a child run records the reuse).
Changing a fine-tune stage's config changes only its key, so pretraining is
not repeated; changing the pretrain config changes the pretrain key and,
through the reference, every stage that uses its encoder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moodops.components.errors import ConfigError, invalid_choice
from moodops.orchestrator.paper_report import PAPER_METRICS, no_spread, paper_entries

logger = logging.getLogger(__name__)

KINDS = ("pretrain", "run")
PRESETS_DIR = Path(__file__).resolve().parent.parent / "pipelines" / "presets"
_REF = re.compile(r"^\$\{([A-Za-z0-9_\-]+)\.(encoder)\}$")
#: Keys that say where results go or how fast they come, not what they are (left out of stage keys).
_NOT_CONTENT = {"tracking_uri", "experiment", "output_json", "cache_dir", "address", "cpus_per_fold",
                "gpus_per_fold", "folds_per_task", "max_retries", "workers", "use_gpu", "register_as", "alias", "resume",
                "tracking_retry_s"}
STAGE_KEY_TAG = "moodops.stage_key"
CODE_VERSION = 1  # bump when a change to moodops should invalidate cached stages


@dataclass
class Stage:
    name: str
    kind: str
    config: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)  # config key → referenced stage


@dataclass
class Spec:
    name: str
    description: str
    stages: list[Stage]
    path: Path
    #: The paper's reported numbers (``source``, ``metric``, ``stages``: stage → {mean, std, row}, and
    #: ``rows``: the table's other rows), printed and logged beside each stage's result.
    paper: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageOutcome:
    name: str
    kind: str
    key: str
    cached: bool
    run_id: str
    encoder: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def resolve_spec_path(spec: str) -> Path:
    """A spec path, or the name of a preset (``mood_reader_seed``)."""
    path = Path(spec)
    if path.is_file():
        return path
    preset = PRESETS_DIR / (spec if spec.endswith((".yaml", ".yml")) else f"{spec}.yaml")
    if preset.is_file():
        return preset
    names = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
    raise ConfigError(f"{spec}: no such pipeline spec file, and not a preset (presets: {', '.join(names)})")


def load_spec(spec: str | Path) -> Spec:
    """Parse and validate a spec; every problem is one line naming the file and the stage."""
    from moodops.orchestrator.config import read_yaml

    path = resolve_spec_path(str(spec))
    data = read_yaml(path, "pipeline spec")
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list) or not data["stages"]:
        raise ConfigError(f"{path}: a pipeline spec is a mapping with a non-empty 'stages' list")
    # ``x-…`` keys hold YAML anchors for the stages to share (as in Compose files) and are otherwise ignored
    unknown = sorted(k for k in set(data) - {"name", "description", "stages", "paper"} if not str(k).startswith("x-"))
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key '{unknown[0]}' (name, description, stages, paper, "
                          "or x-NAME for shared YAML anchors)")
    stages: list[Stage] = []
    for i, raw in enumerate(data["stages"], start=1):
        where = f"{path}: stage {i}"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: must be a mapping with name, kind and config")
        extra = sorted(set(raw) - {"name", "kind", "config"})
        if extra:
            raise ConfigError(f"{where}: unknown key '{extra[0]}' (name, kind, config)")
        name = str(raw.get("name") or "")
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
            raise ConfigError(f"{where}: 'name' must be letters, digits, '-' or '_'; got {raw.get('name')!r}")
        if any(s.name == name for s in stages):
            raise ConfigError(f"{where}: stage name '{name}' is used twice")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where} ({name}): {invalid_choice('kind', kind, KINDS)}")
        config = raw.get("config") or {}
        if not isinstance(config, dict):
            raise ConfigError(f"{where} ({name}): 'config' must be a mapping")
        config = {str(k).replace("-", "_"): v for k, v in config.items()}
        refs = {}
        for k, v in config.items():
            if isinstance(v, str) and "${" in v:
                m = _REF.match(v.strip())
                if not m:
                    raise ConfigError(f"{where} ({name}): '{k}: {v}' — the only reference is ${{STAGE.encoder}}")
                target = next((s for s in stages if s.name == m.group(1)), None)
                if target is None:
                    raise ConfigError(f"{where} ({name}): '{k}' refers to stage '{m.group(1)}', which is not an "
                                      f"earlier stage")
                if target.kind != "pretrain":
                    raise ConfigError(f"{where} ({name}): '{k}' refers to '{target.name}', which is not a pretrain "
                                      f"stage")
                refs[k] = target.name
        stage = Stage(name, kind, config, refs)
        _validate(stage, {k: "models:/placeholder/1" for k in refs}, f"{where} ({name})", synthetic=None)
        stages.append(stage)
    paper = _paper_block(data.get("paper"), path, {s.name for s in stages})
    return Spec(str(data.get("name") or path.stem), str(data.get("description") or ""), stages, path, paper)


def with_overrides(spec: Spec, overrides: dict[str, Any], pretrain_overrides: dict[str, Any] | None = None) -> Spec:
    """The spec with ``overrides`` (RunConfig keys, e.g. from ``pipeline run --set epochs=2``) set in every
    ``run`` stage's config and ``pretrain_overrides`` (PretrainJob keys, from ``--set-pretrain epochs=1``) in
    every ``pretrain`` stage's, each stage validated again (an unknown key or bad value is one line naming the
    stage). The overrides are part of each stage's config, so an overridden stage never reuses a result of
    the preset as written, and a run stage downstream of an overridden pretraining uses that encoder."""
    pretrain_overrides = pretrain_overrides or {}
    if not overrides and not pretrain_overrides:
        return spec
    stages = []
    for i, stage in enumerate(spec.stages, start=1):
        given, flag = (overrides, "--set") if stage.kind == "run" else (pretrain_overrides, "--set-pretrain")
        if given:
            stage = dataclasses.replace(stage, config={**stage.config, **given})
            _validate(stage, {k: "models:/placeholder/1" for k in stage.refs},
                      f"{flag}, stage {i} ({stage.name})", synthetic=None)
        stages.append(stage)
    if pretrain_overrides and not any(s.kind == "pretrain" for s in stages):
        raise ConfigError(f"--set-pretrain: {spec.name} has no pretrain stage")
    return dataclasses.replace(spec, stages=stages)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    return float(value)


def _paper_block(block: Any, path: Path, stage_names: set[str]) -> dict[str, Any]:
    """Validate a spec's ``paper:`` block: ``source`` and ``metric`` strings, ``stages`` mapping stage
    names of this spec to ``{mean, std, row}`` (in %, of the block's ``metric``) or to a list of
    ``{metric, mean, std, row}`` where the paper reports several metrics for a stage (DFCN: ACC and F1),
    ``rows`` a list of ``{method, mean, std}``."""
    if block is None:
        return {}
    where = f"{path}: paper"
    if not isinstance(block, dict):
        raise ConfigError(f"{where}: must be a mapping with source, metric, stages and rows")
    extra = sorted(set(block) - {"source", "metric", "stages", "rows"})
    if extra:
        raise ConfigError(f"{where}: unknown key '{extra[0]}' (source, metric, stages, rows)")
    if not isinstance(block.get("source"), str) or not isinstance(block.get("metric"), str):
        raise ConfigError(f"{where}: 'source' and 'metric' must be strings")
    stages = block.get("stages") or {}
    if not isinstance(stages, dict):
        raise ConfigError(f"{where}.stages: must map stage names to {{mean, std, row}}")
    for name, value in stages.items():
        if name not in stage_names:
            raise ConfigError(f"{where}.stages: '{name}' is not a stage of this spec")
        entries = value if isinstance(value, list) else [value]
        if not entries:
            raise ConfigError(f"{where}.stages.{name}: an empty list; give {{mean, std, row}} or a list of them")
        for k, entry in enumerate(entries, start=1):
            at = f"{where}.stages.{name}" + (f"[{k}]" if isinstance(value, list) else "")
            if not isinstance(entry, dict):
                raise ConfigError(f"{at}: must be a mapping with mean, std and row (or a list of such mappings, "
                                  "each with its metric)")
            unknown = sorted(set(entry) - {"mean", "std", "row", "metric"})
            if unknown:
                raise ConfigError(f"{at}: unknown key '{unknown[0]}' (mean, std, row, metric)")
            if entry.get("metric") is not None and entry["metric"] not in PAPER_METRICS:
                raise ConfigError(f"{at}.metric: {invalid_choice('metric', entry['metric'], PAPER_METRICS)}")
            _number(entry.get("mean"), f"{at}.mean")
            if entry.get("std") is not None:  # some tables print no spread (MV-SSTMA's Table 4)
                _number(entry["std"], f"{at}.std")
    rows = block.get("rows") or []
    if not isinstance(rows, list):
        raise ConfigError(f"{where}.rows: must be a list of {{method, mean, std}}")
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not isinstance(row.get("method"), str):
            raise ConfigError(f"{where}.rows[{i}]: must be a mapping with method, mean and std")
        for key in ("mean", "std"):
            if row.get(key) is not None:
                _number(row[key], f"{where}.rows[{i}].{key}")
    return {"source": block["source"], "metric": block["metric"], "stages": stages, "rows": rows}


def _materialise(stage: Stage, resolved: dict[str, str], synthetic: bool | None,
                 roots: dict[str, str]) -> dict[str, Any]:
    values = {**stage.config, **resolved}
    if synthetic:
        values["synthetic"] = True
        values["root"] = None
    elif synthetic is False:
        name = values.get("corpus") or values.get("dataset") or ("eegmmidb" if stage.kind == "pretrain" else None)
        if name in roots:
            values["root"] = roots[name]
            values["synthetic"] = False
    return values


def _validate(stage: Stage, resolved: dict[str, str], where: str, synthetic: bool | None,
              roots: dict[str, str] | None = None):
    """The stage's config object (PretrainJob or RunConfig); at load time data sources are not required."""
    from moodops.orchestrator.config import config_from_mapping
    from moodops.orchestrator.pretrain import PretrainJob

    values = _materialise(stage, resolved, synthetic, roots or {})
    if synthetic is None and not values.get("root"):
        values["synthetic"] = True  # data are chosen at run time
    try:
        if stage.kind == "pretrain":
            return PretrainJob.from_dict(values, where)
        return config_from_mapping(values, where)
    except ConfigError as e:
        text = str(e)
        raise ConfigError(text if text.startswith(where) else f"{where}: {text}") from None


def _fingerprint_tree(root: Path) -> str:
    h = hashlib.sha256()
    if root.is_file():
        files = [root]
        base = root.parent
    else:
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        base = root
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(base)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def stage_key(stage: Stage, job, upstream: dict[str, str]) -> str:
    """Content address of a stage: kind, config (minus where results go), upstream keys, data fingerprint."""
    from moodops.orchestrator.run import SYNTHETIC_VERSION

    config = {k: v for k, v in dataclasses.asdict(job).items() if k not in _NOT_CONTENT and k not in stage.refs}
    if job.synthetic:
        data = f"synthetic-v{SYNTHETIC_VERSION}"
    else:
        root = Path(job.root).expanduser()
        if not root.exists():
            raise ConfigError(f"stage {stage.name}: data root {root} does not exist")
        data = _fingerprint_tree(root)
    blob = json.dumps({"kind": stage.kind, "config": config, "upstream": {k: upstream[s] for k, s in stage.refs.items()},
                       "data": data, "code": CODE_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cached_run(client, experiment_ids: list[str], key: str):
    runs = client.search_runs(experiment_ids, filter_string=f"tags.`{STAGE_KEY_TAG}` = '{key}' and "
                                                            f"attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def paper_report(spec: Spec, outcomes: list[StageOutcome], synthetic: bool) -> list[str]:
    """The paper-vs-run table as terminal lines (empty without a ``paper:`` block). ``synthetic`` is the
    pipeline's --synthetic; stages that set ``synthetic: true`` themselves count as synthetic too."""
    from moodops.orchestrator import paper_report as report

    if not spec.paper:
        return []
    flags = {s.name: bool(synthetic or s.config.get("synthetic")) for s in spec.stages}
    rows = report.paper_rows(spec.paper, outcomes, flags)
    return report.to_terminal(rows, spec.paper) if rows else []


def run_pipeline(spec: Spec, synthetic: bool = False, roots: dict[str, str] | None = None,
                 tracking_uri: str | None = None, experiment: str = "moodops-pipelines", force: bool = False,
                 reporter=None) -> tuple[str, list[StageOutcome]]:
    """Run the spec's stages in order under one parent run; returns (parent run id, outcomes)."""
    from moodops.orchestrator.pretrain import run_pretrain
    from moodops.orchestrator.run import Reporter, run_experiment
    from moodops.orchestrator.tracking import Tracker, git_commit

    reporter = reporter or Reporter()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    tracker = Tracker(tracking_uri, experiment)
    uri = tracker.uri
    parent = tracker.start_parent(f"pipeline-{spec.name}", {"spec": spec.path.name, "synthetic": synthetic,
                                                            "stages": [s.name for s in spec.stages]},
                                  {"moodops.kind": "pipeline", "moodops.pipeline": spec.name,
                                   "moodops.git_commit": git_commit()})
    tracker.client.log_text(parent, spec.path.read_text(), f"spec/{spec.path.name}")
    reporter.status(f"pipeline {spec.name}: {len(spec.stages)} stage(s); MLflow parent run {parent} ({uri})")
    outcomes: list[StageOutcome] = []
    stage_synthetic: dict[str, bool] = {}
    keys: dict[str, str] = {}
    encoders: dict[str, str] = {}
    status = "FAILED"
    try:
        for i, stage in enumerate(spec.stages, start=1):
            resolved = {k: encoders[s] for k, s in stage.refs.items()}
            job = _validate(stage, resolved, f"{spec.path}: stage {stage.name}", synthetic, roots)
            job = dataclasses.replace(job, tracking_uri=uri, experiment=experiment)
            stage_synthetic[stage.name] = bool(getattr(job, "synthetic", False))
            key = stage_key(stage, job, keys)
            keys[stage.name] = key
            tags = {"mlflow.parentRunId": parent, STAGE_KEY_TAG: key, "moodops.stage": stage.name}
            cached = None if force else _cached_run(tracker.client, [tracker.experiment_id], key)
            if cached is not None and stage.kind == "pretrain" and not cached.data.tags.get("moodops.encoder_uri"):
                cached = None  # the run finished but its encoder was not recorded: redo it
            if cached is not None:
                encoder = cached.data.tags.get("moodops.encoder_uri") if stage.kind == "pretrain" else None
                if encoder:
                    encoders[stage.name] = encoder
                metrics = dict(cached.data.metrics)
                reuse = tracker.client.create_run(tracker.experiment_id, run_name=f"{stage.name} (cached)", tags={
                    "mlflow.parentRunId": parent, "moodops.stage": stage.name, "moodops.cached_from":
                    cached.info.run_id, STAGE_KEY_TAG + ".reused": key})
                tracker.client.set_terminated(reuse.info.run_id, "FINISHED")
                reporter.status(f"stage {i}/{len(spec.stages)} {stage.name}: unchanged (key {key}), reusing run "
                                f"{cached.info.run_id}" + (f"; encoder {encoder}" if encoder else ""))
                outcomes.append(StageOutcome(stage.name, stage.kind, key, True, cached.info.run_id, encoder, metrics))
                continue
            reporter.status(f"stage {i}/{len(spec.stages)} {stage.name} ({stage.kind}, key {key})")
            t0 = time.perf_counter()
            if stage.kind == "pretrain":
                summary = run_pretrain(job, reporter, parent_run_id=parent)
                encoder = (f"models:/{summary.registered_model}/{summary.version}" if summary.version
                           else f"runs:/{summary.run_id}/encoder")
                tracker.client.set_tag(summary.run_id, STAGE_KEY_TAG, key)
                tracker.client.set_tag(summary.run_id, "moodops.stage", stage.name)
                tracker.client.set_tag(summary.run_id, "moodops.encoder_uri", encoder)
                encoders[stage.name] = encoder
                metrics = {"train_loss": summary.history[-1]["train_loss"],
                           **({"val_loss": summary.history[-1]["val_loss"]} if "val_loss" in summary.history[-1]
                              else {})}
                outcomes.append(StageOutcome(stage.name, stage.kind, key, False, summary.run_id, encoder, metrics))
            else:
                summary = run_experiment(job, reporter, tags=tags)
                outcomes.append(StageOutcome(stage.name, stage.kind, key, False, summary.parent_run_id, None,
                                             dict(summary.aggregate)))
                for reported in paper_entries(spec.paper, stage.name):
                    metric = reported["metric"]
                    ours = summary.aggregate.get(f"test_{metric}_mean")
                    if ours is None:
                        reporter.status(f"stage {stage.name}: the paper reports {metric}, which this run does not "
                                        "have")
                        continue
                    value = (f"{100 * ours:.2f} ± {100 * summary.aggregate[f'test_{metric}_std']:.2f} %"
                             if summary.aggregate.get("n_subject_groups", 1) > 1
                             else f"{100 * ours:.2f} % ({no_spread(summary.aggregate)})")
                    theirs = f"{reported['mean']:.2f}" + (f" ± {reported['std']:.2f}" if reported.get("std") is not None
                                                          else " (no spread printed)")
                    reporter.status(f"stage {stage.name}: {metric} {value}; the paper reports {theirs} "
                                    f"({reported.get('row', '')}, {spec.paper['source']})")
            reporter.status(f"stage {stage.name} done in {time.perf_counter() - t0:.0f} s")
        tracker.client.log_dict(parent, [dataclasses.asdict(o) for o in outcomes], "stages.json")
        if spec.paper:
            tracker.client.log_dict(parent, spec.paper, "paper.json")
            from moodops.orchestrator import paper_report as report

            rows = report.paper_rows(spec.paper, outcomes, stage_synthetic)
            if rows:
                tracker.client.log_text(parent, report.to_markdown(rows, spec.paper), "paper_comparison.md")
                tracker.client.log_text(parent, report.to_csv(rows), "paper_comparison.csv")
        status = "FINISHED"
    finally:
        tracker.end_parent(status)
    return parent, outcomes
