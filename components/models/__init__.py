"""Model registry and the input contract every model follows.

Inputs. A model is built from the *shapes* of its inputs and is called with
the inputs as tensors of those shapes plus a leading batch axis:

- ``x``    ``(N, C, F)`` — N consecutive feature windows of the EEG, C channels
  and F features per channel: the DE bands (feature ``de``/``psd``) or C
  connectivity values (feature ``dfc``, so F == C);
- ``raw``  ``(N, C, S)`` — the raw EEG of the same N windows, S samples each;
- ``eye``  ``(N, E)``    — eye-movement features of the same N windows;
- ``face`` ``(N, D)``    — facial features of the same N windows;
- ``psd``  ``(N, C, B)`` — Welch band power of the same N windows per channel
  (the DFCN's EEG node features, beside connectivity in ``x``).

``model(x, **extras)`` returns logits ``(batch, n_classes)``; ``extras`` holds
exactly the inputs the chosen variant declares besides ``x``. A model may add a
training-only loss term (e.g. DCCA) by defining ``auxiliary_loss()``, which
returns the term computed in the last forward pass in training mode (or None).

Variants. Each registry entry is one model family; its variants (the paper's
ablations) differ in fixed constructor arguments and in the inputs they need.
``create_model(name, shapes, n_classes, variant=..., **hyperparameters)``
builds one. Entries name their module lazily so listing does not import torch.

Frameworks. ``torch`` models train through :func:`moodops.pipelines.train.fit`;
``sklearn`` models (the SVM baseline) implement ``fit(x, y)``, ``predict(x)``,
``state()`` and ``from_state(state)`` on plain numpy arrays.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from moodops.components.errors import ConfigError, invalid_choice
from moodops.components.registry import Registry

#: Which dataset modality each model input comes from: ``eeg`` is EEG features
#: (computed or precomputed), ``raw_eeg`` the EEG signal itself, which
#: feature-only releases (SEED-IV, SEED-V) do not have.
INPUT_MODALITY = {"x": "eeg", "raw": "raw_eeg", "eye": "eye", "face": "face", "psd": "eeg"}


@dataclass(frozen=True)
class Variant:
    """One named configuration of a model family.

    ``params`` are constructor arguments the variant fixes (a user may not
    override them); ``inputs`` are the model inputs it reads.
    """

    name: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ("x",)

    @property
    def extras(self) -> tuple[str, ...]:
        """The inputs besides ``x`` this variant needs."""
        return tuple(i for i in self.inputs if i != "x")

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(INPUT_MODALITY[i] for i in self.inputs))


@dataclass(frozen=True)
class ModelInfo:
    """A registered model family.

    ``features``: feature kinds ``x`` may hold (the first is the default).
    ``run_defaults``: run settings this model needs unless the user sets them
    (e.g. ``seq_len``, ``window_s``, ``batch_size``).
    ``unscaled_inputs``: inputs the model reads in their own units, not
    z-scored on the training part (the DFCN's Pearson values, which its prior
    multiplies; missing values are still imputed).
    """

    name: str
    target: str  # "module:Class"
    description: str
    variants: tuple[Variant, ...] = (Variant("default", "the model", {}, ("x",)),)
    features: tuple[str, ...] = ("de", "psd", "precomputed")
    run_defaults: dict[str, Any] = field(default_factory=dict)
    framework: str = "torch"
    default: str | None = None  # the variant used when none is named (None: the first)
    unscaled_inputs: tuple[str, ...] = ()

    def load(self) -> type:
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def default_variant(self) -> str:
        return self.default or self.variants[0].name

    def variant(self, name: str | None) -> Variant:
        name = name or self.default_variant
        for v in self.variants:
            if v.name == name:
                return v
        raise ConfigError(invalid_choice(f"variant of model '{self.name}'", name, [v.name for v in self.variants]))

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities of the default variant."""
        return self.variant(None).modalities

    def variants_for(self, modalities: tuple[str, ...]) -> list[Variant]:
        """The variants a dataset with these modalities can feed, in preference order."""
        return [v for v in self.variants if set(v.modalities) <= set(modalities)]


MODELS: Registry[ModelInfo] = Registry("model")


def register_model(info: ModelInfo) -> None:
    MODELS.register(info.name)(info)


_MR = "moodops.components.models.mood_reader:MoodReader"
register_model(ModelInfo(
    "mood_reader", _MR,
    "Mood Reader (Dong et al. 2024): MBSM raw-EEG encoder, interlinked spatial-temporal attention on DE, "
    "eye-movement branch, multi-level attention fusion",
    variants=(
        Variant("full", "STIB + encoder + eye branch, multi-level fusion",
                {"interlink": True, "encoder": True, "eye": True, "fusion": "mlf"}, ("x", "raw", "eye")),
        Variant("stib_eye_mlf", "STIB + eye branch, multi-level fusion",
                {"interlink": True, "encoder": False, "eye": True, "fusion": "mlf"}, ("x", "eye")),
        Variant("stib_eye_cf", "STIB + eye branch, concatenation fusion",
                {"interlink": True, "encoder": False, "eye": True, "fusion": "concat"}, ("x", "eye")),
        Variant("stib_enc_mlf", "STIB + encoder, multi-level fusion",
                {"interlink": True, "encoder": True, "eye": False, "fusion": "mlf"}, ("x", "raw")),
        Variant("stib_enc_cf", "STIB + encoder, concatenation fusion",
                {"interlink": True, "encoder": True, "eye": False, "fusion": "concat"}, ("x", "raw")),
        Variant("stib_cf", "spatial/temporal blocks with interlink, concatenation fusion",
                {"interlink": True, "encoder": False, "eye": False, "fusion": "concat"}, ("x",)),
        Variant("stb_cf", "parallel spatial/temporal blocks only, concatenation fusion",
                {"interlink": False, "encoder": False, "eye": False, "fusion": "concat"}, ("x",)),
    ),
    run_defaults={"seq_len": 4},
))
register_model(ModelInfo(
    "mv_sstma", "moodops.components.models.mv_sstma:MultimodalSSTMA",
    "Multimodal MV-SSTMA (Gao et al. 2024): spectral-spatial-temporal masked autoencoder extractors for EEG "
    "and eye movements, concatenation or attention fusion, DCCA loss",
    variants=(
        Variant("attention", "EEG + eye extractors, attention fusion, DCCA loss", {"mode": "attention"},
                ("x", "eye")),
        Variant("concat", "EEG + eye extractors, concatenation fusion, DCCA loss", {"mode": "concat"},
                ("x", "eye")),
        Variant("eeg", "EEG extractor only", {"mode": "eeg"}, ("x",)),
        Variant("eye", "eye-movement extractor only", {"mode": "eye"}, ("eye",)),
    ),
    # Fixed epochs, the last kept, as the paper trains (§3.2); measured on the realistic synthetic SEED-IV,
    # per-subject eye: 0.567 ± 0.160 this way, 0.461 ± 0.007 with stratified validation (README).
    run_defaults={"seq_len": 10, "seq_step": 2, "val_strategy": "none"},
))
#: Zheng et al. 2023 §3: "theta (4–8 Hz), slow alpha (8–10 Hz), alpha (8–12 Hz), beta (12–30 Hz), and gamma
#: (30+ Hz)". Gamma ends at 45 Hz, the upper edge of DEAP's released band-pass (4–45 Hz): above it the
#: preprocessed signal holds no EEG.
DFCN_PSD_BANDS = {"theta": [4.0, 8.0], "slow_alpha": [8.0, 10.0], "alpha": [8.0, 12.0], "beta": [12.0, 30.0],
                  "gamma": [30.0, 45.0]}
register_model(ModelInfo(
    "dfcn", "moodops.components.models.dfcn:PriorDrivenDFCN",
    "Prior-driven dynamic brain networks (Zheng et al. 2023): Pearson dynamic functional connectivity, "
    "EEG-face cross-attention prior, 3D residual CNN with a non-local block",
    # Table 2's rows, fullest first.
    variants=(
        Variant("full", "prior knowledge embedding (PSD nodes x face), STFENet with the non-local block",
                {"prior": True, "nonlocal_block": True, "extractor": "stfenet"}, ("x", "psd", "face")),
        Variant("no_nonlocal", "w/o NL block: prior knowledge embedding, STFENet without the non-local block",
                {"prior": True, "nonlocal_block": False, "extractor": "stfenet"}, ("x", "psd", "face")),
        Variant("no_stfenet", "w/o STFENet: prior knowledge embedding, a plain per-window 2D CNN instead",
                {"prior": True, "nonlocal_block": False, "extractor": "plain2d"}, ("x", "psd", "face")),
        Variant("no_prior", "w/o PKE: STFENet on the original DFCNs (no face modality needed)",
                {"prior": False, "nonlocal_block": True, "extractor": "stfenet"}, ("x",)),
        Variant("baseline", "Baseline: the plain per-window 2D CNN on the original DFCNs (no PKE, no STFENet)",
                {"prior": False, "nonlocal_block": False, "extractor": "plain2d"}, ("x",)),
    ),
    features=("dfc", "spectral_dfc"),
    # §3: 3-s windows, Adam, lr 0.001, batch 40; 20 windows = one 60-s DEAP trial per sample.
    run_defaults={"window_s": 3.0, "seq_len": 20, "batch_size": 40, "lr": 1e-3, "optimizer": "adam",
                  "feature_params": {"psd": {"bands": DFCN_PSD_BANDS}}},
    unscaled_inputs=("x",),
))
register_model(ModelInfo(
    "dgcnn", "moodops.components.models.dgcnn:DGCNN",
    "dynamical graph CNN (Song et al. 2018) on DE with a learnable adjacency (baseline)",
    run_defaults={"seq_len": 1},
))


def _baseline_variants(what: str) -> tuple[Variant, ...]:
    """A baseline on each modality alone and on EEG fused with each other one (features concatenated),
    as the papers' tables list them (Mood Reader Table 1: SVM on DE, and on DE with eye movements;
    DFCN Table 1: SVM on EEG and face). The fused ones come first, so ``--variant auto`` picks the
    fullest one the dataset can feed; ``default`` is EEG only."""
    return (
        Variant("eeg_eye", f"{what} on EEG features and eye movements, concatenated",
                {"inputs": ("x", "eye")}, ("x", "eye")),
        Variant("eeg_face", f"{what} on EEG features and face features, concatenated",
                {"inputs": ("x", "face")}, ("x", "face")),
        Variant("default", f"{what} on EEG features", {"inputs": ("x",)}, ("x",)),
        Variant("eye", f"{what} on eye movements only", {"inputs": ("eye",)}, ("eye",)),
        Variant("face", f"{what} on face features only", {"inputs": ("face",)}, ("face",)),
    )


register_model(ModelInfo(
    "svm", "moodops.components.models.svm:SVMClassifier",
    "support vector machine (scikit-learn) on flattened features, one modality or several (baseline)",
    variants=_baseline_variants("SVM"),
    run_defaults={"seq_len": 1},
    framework="sklearn",
    default="default",
))
register_model(ModelInfo(
    "linear", "moodops.components.models.linear:LinearClassifier",
    "logistic regression on flattened features, one modality or several (baseline)",
    variants=_baseline_variants("logistic regression"),
    # One window per sample, as the papers' baselines; a convex model on a few hundred samples
    # is left unconverged after 30 epochs at 1e-3.
    run_defaults={"seq_len": 1, "lr": 1e-2},
    default="default",
))


def model_hyperparameters(name: str, variant: str | None = None) -> dict[str, Any]:
    """The keyword arguments a user may set for a model (variant) and their defaults."""
    info = MODELS.get(name)
    fixed = info.variant(variant).params
    params = inspect.signature(info.load().__init__).parameters
    return {k: p.default for k, p in params.items()
            if k not in ("self", "shapes", "n_classes") and k not in fixed and p.kind is p.POSITIONAL_OR_KEYWORD}


def input_shapes(name: str, variant: str | None, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Check that ``shapes`` holds every input the variant needs; return just those."""
    v = MODELS.get(name).variant(variant)
    missing = [i for i in v.inputs if i not in shapes]
    if missing:
        raise ConfigError(f"model '{name}' (variant {v.name}) needs input(s) {', '.join(missing)}; "
                          f"got {', '.join(sorted(shapes)) or 'none'}")
    out = {i: tuple(int(d) for d in shapes[i]) for i in v.inputs}
    if "x" not in out and "x" in shapes:  # an eye-only variant still gets x's shape for reference
        out["x"] = tuple(int(d) for d in shapes["x"])
    expected = {"x": 3, "raw": 3, "eye": 2, "face": 2, "psd": 3}
    for key, shape in out.items():
        if len(shape) != expected[key]:
            raise ConfigError(f"model '{name}': input '{key}' must have {expected[key]} axes per sample, "
                              f"got shape {shape}")
    return out


def create_model(name: str, shapes: dict[str, tuple[int, ...]] | tuple[int, ...], n_classes: int,
                 variant: str | None = None, **hyperparameters: Any):
    """Build a registered model (variant); unknown or fixed hyperparameters are a ConfigError.

    ``shapes`` maps input names to per-sample shapes; a bare tuple is the
    shape of ``x``.
    """
    info = MODELS.get(name)
    v = info.variant(variant)
    if not isinstance(shapes, dict):
        shapes = {"x": tuple(shapes)}
    fixed = sorted(set(hyperparameters) & set(v.params))
    if fixed:
        raise ConfigError(f"model '{name}' variant '{v.name}' fixes {', '.join(fixed)}; choose another --variant "
                          "instead of overriding it")
    allowed = model_hyperparameters(name, v.name)
    unknown = sorted(set(hyperparameters) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model '{name}' has no hyperparameter(s) {', '.join(unknown)}; it takes: {', '.join(sorted(allowed)) or 'none'}"
        )
    if n_classes < 2:
        raise ConfigError(f"model '{name}' needs at least 2 classes, got {n_classes}")
    return info.load()(input_shapes(name, v.name, shapes), int(n_classes), **v.params, **hyperparameters)


__all__ = ["INPUT_MODALITY", "MODELS", "ModelInfo", "Variant", "create_model", "input_shapes",
           "model_hyperparameters", "register_model"]
