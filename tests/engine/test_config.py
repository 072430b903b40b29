"""Config: TOML load/save, --set overrides, and every validation error the user can hit."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.config import Config, config_from_dict, config_to_toml, field_specs, load_config, with_overrides
from studio.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_contract_defaults_and_example_load() -> None:
    cfg = load_config("examples/digits.toml")
    assert cfg.data.source == "digits" and cfg.model.arch == "mlp" and cfg.model.hidden == [128]
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.optimizer) == (3, 64, 0.001, "adam")
    assert cfg.train.device == "auto" and cfg.data.val_split == 0.1 and cfg.data.test_split == 0.1


def test_round_trip_through_toml(tmp_path: Path) -> None:
    cfg = with_overrides(Config(), ["train.lr=0.05", "model.hidden=[64, 32]", "augment.flip=true", "seed=7"])
    path = _write(tmp_path, config_to_toml(cfg))
    assert load_config(path) == cfg
    assert cfg.train.lr == 0.05 and cfg.model.hidden == [64, 32] and cfg.augment.flip and cfg.seed == 7


def test_int_accepted_for_float() -> None:
    assert config_from_dict({"train": {"lr": 1}}).train.lr == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[train]\nlearning_rate = 0.1\n", "unknown key 'learning_rate' in [train]"),
        ("[train]\nbatchsize = 3\n", "did you mean 'batch_size'?"),
        ("[trian]\nlr = 0.1\n", "unknown key 'trian' at the top level; did you mean 'train'?"),
        ("lr = 0.1\n", "it belongs in [train]"),
        ('[train]\nlr = "fast"\n', "[train] lr must be a number (got 'fast')"),
        ("[train]\nepochs = 2.5\n", "[train] epochs must be an integer"),
        ("[train]\nnesterov = 1\n", "[train] nesterov must be true or false"),
        ("[model]\nhidden = 128\n", "[model] hidden must be a list"),
        ("[train]\nlr = 0\n", "[train] lr must be > 0 (got 0)"),
        ("[train]\nlr = -1e-3\n", "[train] lr must be > 0"),
        ("[train]\nbatch_size = 0\n", "[train] batch_size must be >= 1 (got 0)"),
        ("[train]\nepochs = 0\n", "[train] epochs must be >= 1 (got 0)"),
        ("[data]\nval_split = 1.0\n", "[data] val_split must be < 1 (got 1)"),
        ("[data]\ntest_split = -0.1\n", "[data] test_split must be >= 0 (got -0.1)"),
        ("[data]\nval_split = 0.6\ntest_split = 0.5\n", "val_split + test_split must be below 1"),
        ('[train]\noptimizer = "adma"\n', "did you mean 'adam'?"),
        ('[train]\ndevice = "gpu"\n', "[train] device must be auto, cpu, cuda, cuda:N or mps"),
        ('[data]\nsource = "csv"\npath = "nowhere.csv"\n', "nowhere.csv' does not exist"),
        ('[data]\nsource = "folder"\n', "[data] path is required for source 'folder'"),
    ],
)
def test_validation_errors_name_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)  # says where


def test_malformed_toml_gives_line_number(tmp_path: Path) -> None:
    path = _write(tmp_path, "seed = 0\n[train]\nlr = = 3\n")
    with pytest.raises(ConfigError, match=r"malformed TOML.*line 3"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_overrides_validate_and_suggest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'train'"):
        with_overrides(Config(), ["trainn.lr=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        with_overrides(Config(), ["train.lr"])
    with pytest.raises(ConfigError, match=r"\[train\] lr must be > 0"):
        with_overrides(Config(), ["train.lr=-2"])
    assert with_overrides(Config(), ["data.source=linear"]).data.source == "linear"  # bare string


def test_relative_data_path_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,label\n1,0\n2,1\n", encoding="utf-8")
    cfg = load_config(_write(tmp_path, '[data]\nsource = "csv"\npath = "d.csv"\n'))
    assert Path(cfg.data.path) == tmp_path / "d.csv"


def test_field_specs_carry_help_and_limits() -> None:
    rows = {name: (tp, default, meta) for name, tp, default, meta in field_specs("train")}
    assert rows["lr"][0] is float and rows["lr"][2]["min_exclusive"] == 0.0 and rows["lr"][2]["help"]
    assert rows["optimizer"][2]["choices"] == ("sgd", "adam", "adamw")


def test_set_can_fix_a_bad_path_before_validation(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("a,label\n1,0\n2,1\n", encoding="utf-8")
    path = _write(tmp_path, '[data]\nsource = "csv"\npath = "missing.csv"\n')
    assert load_config(path, [f'data.path="{good}"']).data.path == str(good)
    with pytest.raises(ConfigError, match=r"missing\.csv' does not exist"):
        load_config(path)
