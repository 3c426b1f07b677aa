from __future__ import annotations

import pytest

from moodops.components.errors import ConfigError
from moodops.orchestrator.config import RunConfig, parse_int_list, resolve_config


def test_precedence_cli_over_env_over_yaml_over_defaults(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("epochs: 7\nlr: 0.01\nbatch-size: 64\nsynthetic: true\nmodel_params: {dim: 16}\n")
    env = {"MOODOPS_EPOCHS": "9", "MOODOPS_LR": "0.02"}
    cfg = resolve_config({"epochs": 11}, yaml_file, env)
    assert cfg.epochs == 11  # CLI beats env and YAML
    assert cfg.lr == 0.02  # env beats YAML
    assert cfg.batch_size == 64  # YAML beats default
    assert cfg.model_params == {"dim": 16}
    assert cfg.patience == RunConfig.__dataclass_fields__["patience"].default


def test_unknown_yaml_key_is_an_error_with_suggestion(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("epocs: 3\nsynthetic: true\n")
    with pytest.raises(ConfigError, match=r"run.yaml: unknown key 'epocs'. Did you mean 'epochs'\?"):
        resolve_config({}, yaml_file, {})


def test_unknown_environment_variable_is_an_error():
    with pytest.raises(ConfigError, match="MOODOPS_EPOCS.*Did you mean 'MOODOPS_EPOCHS'"):
        resolve_config({"synthetic": True}, None, {"MOODOPS_EPOCS": "3"})


def test_bad_types_name_the_source_and_value(tmp_path):
    with pytest.raises(ConfigError, match="MOODOPS_EPOCHS.*'epochs' must be int, got 'many'"):
        resolve_config({"synthetic": True}, None, {"MOODOPS_EPOCHS": "many"})
    yaml_file = tmp_path / "bad.yaml"
    yaml_file.write_text("- a list\n")
    with pytest.raises(ConfigError, match="bad.yaml: a config file must be a mapping"):
        resolve_config({}, yaml_file, {})


def test_data_source_is_required_and_exclusive():
    with pytest.raises(ConfigError, match="--root DIR .* or --synthetic"):
        resolve_config({}, None, {})
    with pytest.raises(ConfigError, match="exclude each other"):
        resolve_config({"root": "/data", "synthetic": True}, None, {})


def test_subject_lists_and_resources():
    assert parse_int_list("1,3-5, 9") == [1, 3, 4, 5, 9]
    with pytest.raises(ConfigError, match="cannot read 'x'"):
        parse_int_list("1,x")
    assert resolve_config({"synthetic": True, "subjects": "2-4"}, None, {}).subjects == [2, 3, 4]
    with pytest.raises(ConfigError, match="gpus_per_fold"):
        resolve_config({"synthetic": True, "gpus_per_fold": 1.5}, None, {})
    assert resolve_config({"synthetic": True, "gpus_per_fold": 0.25}, None, {}).gpus_per_fold == 0.25


def test_config_hash_ignores_placement_but_not_results():
    a = resolve_config({"synthetic": True}, None, {})
    b = resolve_config({"synthetic": True, "address": "ray://x:10001", "cpus_per_fold": 2}, None, {})
    c = resolve_config({"synthetic": True, "seed": 1}, None, {})
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != c.config_hash()
    assert a.config_hash() != resolve_config({"synthetic": True, "precision": "bf16"}, None, {}).config_hash()
    with pytest.raises(ConfigError, match="precision") as info:
        resolve_config({"synthetic": True, "precision": "fp16"}, None, {})
    assert "\n" not in str(info.value)


def test_feature_params_the_model_default_merged_per_kind_under_the_users():
    from moodops.components.models import DFCN_PSD_BANDS
    from moodops.orchestrator.run import resolve_model_defaults

    dfcn = resolve_model_defaults(RunConfig(synthetic=True, model="dfcn"))
    assert dfcn.feature_params == {"psd": {"bands": DFCN_PSD_BANDS}}  # the paper's five bands (Zheng et al. §3)
    assert list(DFCN_PSD_BANDS) == ["theta", "slow_alpha", "alpha", "beta", "gamma"]
    mine = resolve_model_defaults(RunConfig(synthetic=True, model="dfcn", feature_params={
        "psd": {"segment_s": 1.0}, "de": {"bands": {"alpha": [8, 13]}}}))
    assert mine.feature_params == {"psd": {"bands": DFCN_PSD_BANDS, "segment_s": 1.0},
                                   "de": {"bands": {"alpha": [8, 13]}}}
    assert resolve_model_defaults(mine) == mine
    other = resolve_model_defaults(RunConfig(synthetic=True, model="linear"))
    assert other.feature_params == {}
    # a config without per-feature settings keeps the hash it had before the key existed
    assert other.config_hash() == RunConfig(**{**other.to_dict(), "feature_params": None}).config_hash()
    assert dfcn.config_hash() != RunConfig(**{**dfcn.to_dict(), "feature_params": {}}).config_hash()


@pytest.mark.parametrize(("params", "match"), [
    ({"pds": {}}, "unknown feature 'pds'. Did you mean 'psd'?"),
    ({"psd": {"band": {}}}, "'psd' has no setting 'band'. Did you mean 'bands'?"),
    ({"psd": {"bands": {"theta": [4]}}}, "band 'theta' must be \\[low, high\\]"),
    ({"dfc": {"bands": {}}}, "'dfc' has no setting 'bands'.* none \\(its window is window_s\\)"),
    ({"psd": {"segment_s": "long"}}, "segment_s must be a number"),
])
def test_bad_feature_params_are_one_line_errors_before_any_work(params, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(synthetic=True, model="dfcn", feature_params=params)


def test_model_defaults_fill_only_what_the_user_left_open(tmp_path):
    from moodops.orchestrator.run import resolve_model_defaults

    dfcn = resolve_model_defaults(RunConfig(synthetic=True, model="dfcn"))
    assert (dfcn.variant, dfcn.feature, dfcn.window_s, dfcn.seq_len, dfcn.batch_size, dfcn.lr, dfcn.optimizer) == (
        "full", "dfc", 3.0, 20, 40, 1e-3, "adam")  # --synthetic DEAP comes with face features
    on_disk = resolve_model_defaults(RunConfig(root=str(tmp_path), model="dfcn"))
    assert on_disk.variant == "no_prior"  # no face/ folder beside the .dat files
    (tmp_path / "face").mkdir()
    assert resolve_model_defaults(RunConfig(root=str(tmp_path), model="dfcn")).variant == "full"
    mine = resolve_model_defaults(RunConfig(synthetic=True, model="dfcn", seq_len=6, batch_size=8))
    assert (mine.seq_len, mine.batch_size, mine.window_s) == (6, 8, 3.0)
    reader = resolve_model_defaults(RunConfig(synthetic=True))
    assert (reader.model, reader.variant, reader.feature, reader.window_s, reader.seq_len, reader.batch_size) == (
        "mood_reader", "stib_enc_mlf", "de", 1.0, 4, 256)
    chosen = resolve_model_defaults(RunConfig(synthetic=True, variant="stb_cf"))
    assert chosen.variant == "stb_cf" and chosen.config_hash() != reader.config_hash()
    # Resolving is idempotent: a resolved config resolves to itself.
    assert resolve_model_defaults(reader) == reader


def test_variant_and_feature_errors_before_any_work():
    from moodops.orchestrator.run import resolve_model_defaults

    with pytest.raises(ConfigError, match="variants that run on it: stib_enc_mlf, stib_enc_cf, stib_cf, stb_cf"):
        resolve_model_defaults(RunConfig(synthetic=True, variant="full"))
    with pytest.raises(ConfigError, match="Did you mean 'stib_cf'"):
        resolve_model_defaults(RunConfig(synthetic=True, variant="stibcf"))
    with pytest.raises(ConfigError, match="takes feature dfc or spectral_dfc, not 'psd'"):
        resolve_model_defaults(RunConfig(synthetic=True, model="dfcn", feature="psd"))


def test_features_first_releases_compute_from_raw_eeg_only_when_a_variant_needs_it(tmp_path):
    """SEED-IV and SEED-V ship features first: runs take them, unless the variant needs raw EEG (Mood
    Reader's encoder); SEED-V's computed EEG windows then default to the 4 s of its eye windows."""
    from moodops.orchestrator.run import resolve_model_defaults

    for dataset in ("seed-iv", "seed-v"):
        auto = resolve_model_defaults(RunConfig(synthetic=True, dataset=dataset, model="mood_reader"))
        assert (auto.variant, auto.feature) == ("stib_eye_mlf", "precomputed")  # as before raw EEG was read
        full = resolve_model_defaults(RunConfig(synthetic=True, dataset=dataset, model="mood_reader", variant="full"))
        assert full.feature == "de"
        assert full.window_s == (4.0 if dataset == "seed-v" else 1.0)
        mv = resolve_model_defaults(RunConfig(synthetic=True, dataset=dataset, model="mv_sstma"))
        assert mv.feature == "precomputed"
    features_only = tmp_path / "SEED-V"
    (features_only / "EEG_DE_features").mkdir(parents=True)
    (features_only / "Eye_movement_features").mkdir()
    with pytest.raises(ConfigError, match="needs raw EEG, which the seed-v copy at .* does not have"):
        resolve_model_defaults(RunConfig(root=str(features_only), dataset="seed-v", model="mood_reader",
                                         variant="full"))
    assert resolve_model_defaults(RunConfig(root=str(features_only), dataset="seed-v",
                                            model="mood_reader")).variant == "stib_eye_mlf"
    (features_only / "EEG_raw").mkdir()  # with the recordings, auto takes the full model
    with_raw = resolve_model_defaults(RunConfig(root=str(features_only), dataset="seed-v", model="mood_reader"))
    assert (with_raw.variant, with_raw.feature, with_raw.window_s) == ("full", "de", 4.0)


@pytest.mark.parametrize("args, message", [
    (["--subjects", "3-1"], "'subjects': 3-1: a range must go up, e.g. 1-3"),
    (["--subjects", "0,1"], "'subjects' parameter must list subject numbers >= 1"),
    (["--epochs", "0"], "'epochs' parameter must be an int >= 1. Got 0"),
    (["--ratio", "1.5"], "'ratio' parameter must be a float in (0, 1)"),
    (["--set", "val_fraction=1"], "'val_fraction' parameter must be a float in [0, 1)"),
    (["--set", "lr=0"], "'lr' parameter must be a float > 0"),
    (["--gpus-per-fold", "1"], "--gpus-per-fold 1 but this machine has 0 GPU(s) and no cluster was named"),
])
def test_settings_that_need_no_data_are_refused_before_any_work(tmp_path, args, message):
    """Through the real command: one line, status 2, and nothing made: no features, no MLflow store, no run
    (the GPU case on a machine whose CUDA_VISIBLE_DEVICES hides every GPU)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    cache = Path(env["MOODOPS_CACHE"])
    work = tmp_path / "work"  # tmp_path itself holds the conftest's empty store
    work.mkdir()
    proc = subprocess.run([str(Path(sys.executable).with_name("moodops")), "run", "split", "--dataset", "deap",
                           "--synthetic", "--model", "linear", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moodops: error: ") and message in lines[0], proc.stderr
    assert list(work.iterdir()) == [] and (not cache.exists() or list(cache.iterdir()) == [])


def test_a_descending_range_says_how_to_write_it():
    with pytest.raises(ConfigError, match="5-2: a range must go up, e.g. 2-5"):
        parse_int_list("1,5-2")


def test_synthetic_face_layout_is_complete_unless_asked_and_keeps_old_hashes():
    from moodops.orchestrator.pipeline import _validate, load_spec

    default = RunConfig(synthetic=True)
    assert default.synthetic_face_layout == "complete"  # the README demo's copy has every subject's faces
    assert default.config_hash() != RunConfig(synthetic=True, synthetic_face_layout="deap").config_hash()
    data = default.to_dict()
    del data["synthetic_face_layout"]
    assert RunConfig(**data).config_hash() == default.config_hash()
    with pytest.raises(ConfigError, match="synthetic_face_layout"):
        RunConfig(synthetic=True, synthetic_face_layout="release")
    spec = load_spec("dfcn_deap")
    assert {_validate(s, {}, "dfcn_deap", True).synthetic_face_layout for s in spec.stages} == {"deap"}


def test_a_synthetic_copy_needs_at_least_one_subject():
    assert RunConfig(synthetic=True, synthetic_subjects=10).synthetic_subjects == 10
    with pytest.raises(ConfigError, match="synthetic_subjects must be at least 1, got 0"):
        RunConfig(synthetic=True, synthetic_subjects=0)
