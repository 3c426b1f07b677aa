"""RunConfig: every setting of a run, from four sources.

Precedence: CLI flag > ``MOODOPS_*`` environment variable > YAML file
(``--config``) > defaults. Unknown keys in a YAML file or unknown
``MOODOPS_*`` variables are errors, so a typo never silently does nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from moodops.components.errors import ConfigError, did_you_mean, invalid_choice

# Environment variables that are not RunConfig keys but are read elsewhere.
_OTHER_ENV = {"MOODOPS_CACHE", "MOODOPS_TEST_DEVICE", "MOODOPS_DEBUG"}


@dataclass
class RunConfig:
    """A whole run: data, protocol, model, training, resources and tracking."""

    protocol: str = "loso"
    dataset: str = "deap"
    root: str | None = None
    synthetic: bool = False
    label: str | None = None  # None: the dataset's first target (deap: valence; SEED family: emotion)
    subjects: list[int] | None = None
    # labels
    threshold: float = 5.0
    comparison: str = ">"
    # dataset options
    de_layout: str = "channel-major"  # SEED-V: how its 310 DE values are ordered
    raw_time_scale: float = 1.0  # SEED-V raw EEG: a synthetic copy's shrunk clip timeline (real data: 1)
    # features (None: the model's default, see MODEL_DEFAULTS)
    feature: str | None = None
    de_method: str = "bandpass"
    precomputed: str | None = None
    window_s: float | None = None
    seq_len: int | None = None
    seq_step: int | None = None  # windows between sequence starts; None: seq_len (no overlap)
    window_origin: str = "start"  # start | end: cut windows (and group them) from a trial's end, as Mood Reader
    baseline_removal: bool = False
    # per feature kind, its own settings (bands, Welch segment, frequency range), e.g.
    # {"psd": {"bands": {"theta": [4, 8], "alpha": [8, 12]}}}; None: the model's default (dfcn: the paper's
    # five PSD bands), merged per kind under what is given here; see components.features.FEATURE_PARAMS
    feature_params: dict[str, Any] | None = None
    # protocol
    ratio: float = 0.8
    split_level: str = "trial"
    val_fraction: float = 0.1
    # model selection: stratified (validation trials of every class) | none (fixed epochs, keep the last,
    # as the papers train) | inner (inner folds over the training trials choose the epoch count);
    # None: the model's default (stratified; MV-SSTMA: none, as its paper trains), see MODEL_DEFAULTS
    val_strategy: str | None = None
    inner_folds: int = 3
    attention_maps: bool = True  # Mood Reader: electrode attention of the test part, logged as topomaps
    train_trials: int | None = None
    test_session: int | None = None
    # MV-SSTMA's Table 3: fine-tune on the first N labelled samples of each training part (needs val_strategy none)
    labelled_samples: int | None = None
    labelled_unit: str = "sample"  # sample | trial: what labelled_samples counts (the paper says "10 labeled data")
    # MV-SSTMA's Table 4: hide this share of channels in the fine-tuning *and* the test inputs (mv_sstma only)
    mask_ratio_eval: float | None = None
    # eye features: zscore (fit on the training part) | range (each feature mapped to [10, 100] by the training
    # part's min and max, MV-SSTMA §3.2)
    eye_scaling: str = "zscore"
    # fp32 | bf16: forward passes under bf16 autocast (GPUs with bf16 tensor cores; weights stay float32)
    precision: str = "fp32"
    # model and training
    model: str = "mood_reader"
    variant: str = "auto"
    model_params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 1e-4
    optimizer: str | None = None
    patience: int = 5
    min_epochs: int | None = None  # None: a third of epochs
    seed: int = 0
    # pretrained weights (moodops pretrain): an MLflow model URI, e.g. models:/moodops-mbsm@latest
    encoder: str | None = None
    freeze_encoder: bool = False
    encoder_channels: str = "strict"  # strict | by-name (map the dataset's channels onto the encoder's)
    encoder_resample: bool = False  # resample raw EEG to the encoder's rate
    # resources
    cpus_per_fold: float = 1.0
    gpus_per_fold: float = 0.0
    # folds trained together as one packed model in one Ray task (moodops.pipelines.packed); "auto": 1 for
    # CPU tasks, on GPUs as many as keep the stacked weights small (at most 8)
    folds_per_task: int | str = "auto"
    max_retries: int = 2
    address: str | None = None
    # resume and tracking faults
    resume: bool = True  # re-use the finished folds of an unfinished run with the same config and data
    tracking_retry_s: float = 300.0  # how long to retry logging fold results the tracking store missed
    # tracking and outputs
    tracking_uri: str | None = None
    experiment: str = "moodops"
    output_json: str | None = None
    cache_dir: str | None = None
    # the synthetic dataset used by --synthetic
    synthetic_subjects: int | None = None  # None: the real release's count
    synthetic_trials: int = 40  # DEAP only; the SEED family has fixed trials per session
    synthetic_seconds: float | None = None  # None: see run.SYNTHETIC_SECONDS
    synthetic_effect: float = 1.0
    # DEAP with faces: "complete" (every subject and trial has face CSVs) or "deap" (the release's layout:
    # participants 1-22, four of them incomplete, so the face loader keeps 18; the dfcn_deap preset's)
    synthetic_face_layout: str = "complete"

    def __post_init__(self) -> None:
        # Everything that needs no data is checked here, before a feature is built or a run is created.
        if self.epochs < 1:
            raise ConfigError(f"The 'epochs' parameter must be an int >= 1. Got {self.epochs} instead.")
        if not 0 < self.ratio < 1:
            raise ConfigError(f"The 'ratio' parameter must be a float in (0, 1) (the training share). "
                              f"Got {self.ratio} instead.")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"The 'val_fraction' parameter must be a float in [0, 1). Got {self.val_fraction} instead.")
        if self.patience < 1:
            raise ConfigError(f"The 'patience' parameter must be an int >= 1. Got {self.patience} instead.")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"The 'batch_size' parameter must be an int >= 1. Got {self.batch_size} instead.")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"The 'lr' parameter must be a float > 0. Got {self.lr} instead.")
        if self.subjects is not None and (not self.subjects or min(self.subjects) < 1):
            raise ConfigError(f"The 'subjects' parameter must list subject numbers >= 1. Got {self.subjects} instead.")
        if self.cpus_per_fold <= 0:
            raise ConfigError(f"The 'cpus_per_fold' parameter must be > 0. Got {self.cpus_per_fold} instead.")
        if self.gpus_per_fold < 0:
            raise ConfigError(f"The 'gpus_per_fold' parameter must be >= 0. Got {self.gpus_per_fold} instead.")
        if self.gpus_per_fold > 1 and self.gpus_per_fold != int(self.gpus_per_fold):
            raise ConfigError(
                f"The 'gpus_per_fold' parameter must be a fraction <= 1 or a whole number. Got {self.gpus_per_fold}."
            )
        if isinstance(self.folds_per_task, str) and self.folds_per_task.strip().isdigit():
            self.folds_per_task = int(self.folds_per_task)
        if self.folds_per_task != "auto" and (isinstance(self.folds_per_task, bool)
                                              or not isinstance(self.folds_per_task, int) or self.folds_per_task < 1):
            raise ConfigError(f"The 'folds_per_task' parameter must be 'auto' or an int >= 1. "
                              f"Got {self.folds_per_task!r} instead.")
        if self.max_retries < 0:
            raise ConfigError(f"The 'max_retries' parameter must be >= 0. Got {self.max_retries} instead.")
        if self.seq_len is not None and self.seq_len < 1:
            raise ConfigError(f"The 'seq_len' parameter must be >= 1. Got {self.seq_len} instead.")
        if self.encoder_channels not in ("strict", "by-name"):
            raise ConfigError(invalid_choice("encoder_channels", self.encoder_channels, ("strict", "by-name")))
        if self.seq_step is not None and self.seq_step < 1:
            raise ConfigError(f"The 'seq_step' parameter must be >= 1. Got {self.seq_step} instead.")
        if self.val_strategy is not None and self.val_strategy not in ("stratified", "none", "inner"):
            raise ConfigError(invalid_choice("val_strategy", self.val_strategy, ("stratified", "none", "inner")))
        if self.inner_folds < 2:
            raise ConfigError(f"The 'inner_folds' parameter must be an int >= 2. Got {self.inner_folds} instead.")
        if self.min_epochs is not None and not 1 <= self.min_epochs <= self.epochs:
            raise ConfigError(f"The 'min_epochs' parameter must be an int in [1, epochs={self.epochs}]. "
                              f"Got {self.min_epochs} instead.")
        if self.labelled_samples is not None:
            if self.labelled_samples < 1:
                raise ConfigError(f"The 'labelled_samples' parameter must be an int >= 1. "
                                  f"Got {self.labelled_samples} instead.")
            strategy = self.val_strategy or model_default("val_strategy", self.model)
            if strategy != "none":
                raise ConfigError(f"labelled_samples={self.labelled_samples} fine-tunes on that many labelled samples "
                                  f"only, but val_strategy={strategy} would label validation trials too: "
                                  f"set val_strategy=none (MV-SSTMA's Table 3 trains a fixed number of epochs)")
        if self.mask_ratio_eval is not None:
            if not 0 < self.mask_ratio_eval < 1:
                raise ConfigError(f"The 'mask_ratio_eval' parameter must be a float in (0, 1). "
                                  f"Got {self.mask_ratio_eval} instead.")
            if self.model != "mv_sstma":
                raise ConfigError(f"mask_ratio_eval masks MV-SSTMA's channel tokens (its Table 4); model "
                                  f"'{self.model}' has no such input mask")
            clash = sorted({"train_mask_ratio", "eval_mask_ratio"} & set(self.model_params))
            if clash:
                raise ConfigError(f"mask_ratio_eval={self.mask_ratio_eval} sets the model's {clash[0]}; "
                                  f"drop {clash[0]} from model_params")
        if self.labelled_unit not in ("sample", "trial"):
            raise ConfigError(invalid_choice("labelled_unit", self.labelled_unit, ("sample", "trial")))
        if self.eye_scaling not in ("zscore", "range"):
            raise ConfigError(invalid_choice("eye_scaling", self.eye_scaling, ("zscore", "range")))
        if self.synthetic_subjects is not None and self.synthetic_subjects < 1:
            raise ConfigError(f"synthetic_subjects must be at least 1, got {self.synthetic_subjects}")
        if self.synthetic_face_layout not in ("complete", "deap"):
            raise ConfigError(invalid_choice("synthetic_face_layout", self.synthetic_face_layout, ("complete", "deap")))
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(invalid_choice("precision", self.precision, ("fp32", "bf16")))
        if self.feature_params is not None:
            from moodops.components.features.build import check_feature_params

            check_feature_params(self.feature_params)
        if self.root is None and not self.synthetic:
            raise ConfigError("no data: pass --root DIR (the dataset on disk) or --synthetic")
        if self.root is not None and self.synthetic:
            raise ConfigError("--root and --synthetic exclude each other: choose one")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """Hash of everything that changes results (not where they are sent or how fast)."""
        ignore = {"address", "tracking_uri", "experiment", "output_json", "cache_dir", "cpus_per_fold",
                  "gpus_per_fold", "folds_per_task", "max_retries", "resume", "tracking_retry_s"}
        data = {k: v for k, v in self.to_dict().items() if k not in ignore}
        if data.get("precision") == "fp32":  # the setting came later: fp32 runs keep the hash they had
            del data["precision"]
        if not data.get("feature_params"):  # likewise: runs without per-feature settings keep theirs
            data.pop("feature_params", None)
        if data.get("synthetic_face_layout") == "complete":  # likewise: the layout every earlier run had
            del data["synthetic_face_layout"]
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


#: Defaults of the keys a model may set for itself (``ModelInfo.run_defaults``).
MODEL_DEFAULTS: dict[str, Any] = {"window_s": 1.0, "seq_len": 4, "seq_step": None, "batch_size": 256,
                                  "lr": 1e-3, "optimizer": "adamw", "val_strategy": "stratified",
                                  "feature_params": {}}


def model_default(key: str, model: str) -> Any:
    """What ``key`` resolves to for ``model`` when the user leaves it unset (an unknown model: the
    general default; the name is checked later, with a did-you-mean)."""
    from moodops.components.models import MODELS

    try:
        return MODELS.get(model).run_defaults.get(key, MODEL_DEFAULTS[key])
    except ConfigError:
        return MODEL_DEFAULTS[key]

_HINTS = get_type_hints(RunConfig)
KEYS = tuple(f.name for f in fields(RunConfig))


def _coerce(key: str, value: Any, source: str) -> Any:
    """Convert ``value`` (a YAML value or an environment string) to the RunConfig key's type."""
    return coerce_value(key, _HINTS[key], value, source)


def coerce_value(key: str, hint: Any, value: Any, source: str) -> Any:
    """Convert ``value`` (a YAML value or an environment string) to ``hint`` (a config field's type), or one
    line naming ``source``, the key and the value. A bool is never read as a number."""
    optional = isinstance(hint, types.UnionType) and type(None) in get_args(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: '{key}' cannot be empty")
    base = next(a for a in get_args(hint) if a is not type(None)) if optional else hint
    origin = get_origin(base) or base
    try:
        if origin is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if origin is list:
            return parse_int_list(value) if isinstance(value, str) else [int(v) for v in value]
        if origin is dict:
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
        if origin in (int, float) and isinstance(value, bool):
            raise ValueError(value)
        if origin is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if origin is float:
            return float(value)
        return str(value)
    except ConfigError as e:  # parse_int_list's own message says what is wrong with the list
        raise ConfigError(f"{source}: '{key}': {e}") from None
    except (ValueError, TypeError):
        raise ConfigError(f"{source}: '{key}' must be {getattr(origin, '__name__', origin)}, got {value!r}") from None


def parse_int_list(text: str) -> list[int]:
    """'1,2,5-7' → [1, 2, 5, 6, 7]."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ConfigError(f"{part}: a range must go up, e.g. {hi}-{lo}")
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ConfigError:
            raise
        except ValueError:
            raise ConfigError(f"cannot read '{part}' in the list '{text}' (use e.g. 1,2,5-7)") from None
    if not out:
        raise ConfigError(f"the list '{text}' is empty")
    return out


def _check_keys(keys: Mapping[str, Any], source: str) -> None:
    for key in keys:
        if key not in KEYS:
            raise ConfigError(f"{source}: unknown key '{key}'.{did_you_mean(key, KEYS)}")


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """``yaml.safe_load`` of a file; an unreadable file or bad YAML is one line naming the file."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values, got {type(data).__name__}")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    _check_keys(data, str(path))
    return {k: _coerce(k, v, str(path)) for k, v in data.items()}


def config_from_mapping(values: Mapping[str, Any], source: str) -> RunConfig:
    """A RunConfig from a mapping (e.g. a pipeline stage), keys checked and values coerced as in YAML files."""
    data = {str(k).replace("-", "_"): v for k, v in values.items()}
    _check_keys(data, source)
    return RunConfig(**{k: _coerce(k, v, source) for k, v in data.items()})


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for name, value in environ.items():
        if not name.startswith("MOODOPS_") or name in _OTHER_ENV:
            continue
        key = name[len("MOODOPS_"):].lower()
        if key not in KEYS:
            options = [f"MOODOPS_{k.upper()}" for k in KEYS]
            raise ConfigError(f"environment: unknown variable {name}.{did_you_mean(name, options)}")
        out[key] = _coerce(key, value, f"environment variable {name}")
    return out


def resolve_config(
    cli: Mapping[str, Any] | None = None,
    yaml_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    params_path: str | Path | None = None,
) -> RunConfig:
    """Merge defaults < YAML < tuned parameters (``--params``) < environment < CLI (``None`` CLI values are unset).

    ``model_params`` from ``--params`` are merged into those of the YAML file."""
    merged: dict[str, Any] = {}
    if yaml_path is not None:
        merged.update(load_yaml(yaml_path))
    if params_path is not None:
        tuned = load_yaml(params_path)
        if "model_params" in tuned:
            tuned["model_params"] = {**merged.get("model_params", {}), **tuned["model_params"]}
        merged.update(tuned)
    merged.update(from_env(os.environ if environ is None else environ))
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    _check_keys(cli, "command line")
    merged.update({k: _coerce(k, v, "command line") for k, v in cli.items()})
    return RunConfig(**merged)


def default_cache_dir() -> Path:
    env = os.environ.get("MOODOPS_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("moodops"))
