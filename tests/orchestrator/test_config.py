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
