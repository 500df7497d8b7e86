"""Config loading: unknown keys and wrong types refused before any work, papermill/YAML coercions handled."""
import dataclasses
from typing import Literal, Optional

import pytest
import yaml

from ssml_lib.config import (Config, DataConfig, EvalConfig, RunConfig, config_from_notebook, load_config,
                             load_configs, notebook_parameters, save_config, to_dict)
from ssml_lib.errors import ConfigError, SsmlError

BASE = {"table": "table1_cub_pretrained", "method": "spreading"}


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    lr: float = 0.1
    epochs: int = 2
    amp: bool = False
    mode: Literal["avg", "max"] = "avg"
    topk: Optional[int] = None
    pair: tuple[int, int] = (1, 2)
    names: list[str] = dataclasses.field(default_factory=lambda: ["a"])
    data: DataConfig = dataclasses.field(default_factory=DataConfig)


def test_unknown_key_refused_with_suggestion_and_valid_keys():
    with pytest.raises(ConfigError) as exc:
        load_config(RunConfig, overrides={**BASE, "standin_sise": "tiny"})
    msg = str(exc.value)
    assert "'standin_sise'" in msg and "Did you mean 'standin_size'" in msg
    assert "Valid keys:" in msg and "data_root" in msg
    assert isinstance(exc.value, SsmlError)


def test_unknown_nested_key_refused():
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(RunConfig, overrides={**BASE, "eval": {"batchsize": 3}})
    with pytest.raises(ConfigError, match="unknown parameter 'data.nope'"):
        load_config(RunConfig, overrides={**BASE, "data.nope": 1})


def test_non_strict_drops_unknown_keys():
    cfg = load_config(ToyConfig, overrides={"lr": 0.5, "unrelated": 3}, strict=False)
    assert cfg.lr == 0.5


def test_wrong_type_refused_naming_key_type_value_and_fix():
    with pytest.raises(ConfigError) as exc:
        load_config(ToyConfig, overrides={"epochs": "ten"})
    msg = str(exc.value)
    assert "ToyConfig.epochs" in msg and "int" in msg and "'ten'" in msg and "Fix:" in msg
    with pytest.raises(ConfigError, match="ToyConfig.epochs expects int"):
        load_config(ToyConfig, overrides={"epochs": 2.5})  # no silent truncation
    with pytest.raises(ConfigError, match="expects str"):
        load_config(RunConfig, overrides={"table": 7, "method": "insclr"})


def test_float_from_string_as_yaml_gives_it(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("lr: 1e-3\nepochs: 3\n")
    assert yaml.safe_load(f.read_text())["lr"] == "1e-3"  # the YAML 1.1 pitfall this guards against
    cfg = load_config(ToyConfig, f)
    assert cfg.lr == pytest.approx(1e-3) and isinstance(cfg.lr, float) and cfg.epochs == 3
    with pytest.raises(ConfigError, match="expects float"):
        load_config(ToyConfig, f, coerce_strings=False)
    with pytest.raises(ConfigError, match="NaN"):
        load_config(ToyConfig, overrides={"lr": "nan"})
    with pytest.raises(ConfigError, match="plain float"):
        load_config(ToyConfig, overrides={"lr": "1e-3x"})


def test_int_accepted_for_float_and_string_int_parsed():
    cfg = load_config(ToyConfig, overrides={"lr": 1, "epochs": "007"})  # papermill -p / -r style values
    assert cfg.lr == 1.0 and type(cfg.lr) is float and cfg.epochs == 7


def test_bool_never_from_int_nor_int_from_bool():
    with pytest.raises(ConfigError, match="ToyConfig.amp expects bool"):
        load_config(ToyConfig, overrides={"amp": 1})
    with pytest.raises(ConfigError, match="not a boolean"):
        load_config(ToyConfig, overrides={"epochs": True})
    with pytest.raises(ConfigError, match="expects bool"):
        load_config(ToyConfig, overrides={"amp": "yes"})
    assert load_config(ToyConfig, overrides={"amp": True}).amp is True


def test_literal_choice_refused_with_suggestion():
    with pytest.raises(ConfigError) as exc:
        load_config(ToyConfig, overrides={"mode": "mx"})
    assert "['avg', 'max']" in str(exc.value) and "did you mean 'max'" in str(exc.value)
    with pytest.raises(ConfigError, match="one of"):
        load_config(RunConfig, overrides={**BASE, "device": "gpu"})


def test_none_only_for_optional_fields():
    assert load_config(ToyConfig, overrides={"topk": None}).topk is None
    assert load_config(ToyConfig, overrides={"topk": "5"}).topk == 5
    with pytest.raises(ConfigError, match="leave the key out to keep the default"):
        load_config(ToyConfig, overrides={"epochs": None})


def test_tuples_and_lists():
    cfg = load_config(RunConfig, overrides={**BASE, "ks": [1, 10, 100], "scales": [1, "0.707"]})
    assert cfg.eval.ks == (1, 10, 100) and cfg.eval.scales == (1.0, 0.707)
    assert load_config(RunConfig, overrides={**BASE, "ks": "[1, 10]"}).eval.ks == (1, 10)  # -p ks "[1, 10]"
    with pytest.raises(ConfigError, match=r"eval\.ks"):
        load_config(RunConfig, overrides={**BASE, "ks": [0, 1]})
    with pytest.raises(ConfigError, match="exactly 2 items"):
        load_config(ToyConfig, overrides={"pair": [1, 2, 3]})
    with pytest.raises(ConfigError, match=r"ks\[1\]"):
        load_config(RunConfig, overrides={**BASE, "ks": [1, 2.5]})
    assert load_config(ToyConfig, overrides={"names": ("x", "y")}).names == ["x", "y"]


def test_nested_dataclasses_from_nested_dotted_and_flat_keys(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("table: table5_sop_pretrained\nmethod: insclr\ndata:\n  dataset: sop\n  image_size: 227\n")
    cfg = load_config(RunConfig, f, {"data.standin_seed": 3, "data_root": "/data/sop", "nmi": False})
    assert isinstance(cfg.data, DataConfig) and isinstance(cfg.eval, EvalConfig)
    assert (cfg.data.dataset, cfg.data.image_size, cfg.data.standin_seed) == ("sop", 227, 3)
    assert cfg.data.data_root == "/data/sop" and cfg.eval.nmi is False
    assert cfg.data.resize_size == 256  # untouched nested default
    # later sources win, nested dicts merge rather than replace
    cfg2 = load_config(RunConfig, f, {"data": {"image_size": 224}})
    assert cfg2.data.dataset == "sop" and cfg2.data.image_size == 224


def test_flat_name_in_several_nested_configs_must_be_dotted():
    with pytest.raises(ConfigError, match="ambiguous") as exc:
        load_config(ToyConfigTwo, overrides={"seed": 1})
    assert "a.seed" in str(exc.value) and "b.seed" in str(exc.value)
    assert load_config(ToyConfigTwo, overrides={"a.seed": 1}).a.seed == 1


@dataclasses.dataclass(frozen=True)
class _Seeded(Config):
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class ToyConfigTwo(Config):
    a: _Seeded = dataclasses.field(default_factory=_Seeded)
    b: _Seeded = dataclasses.field(default_factory=_Seeded)


def test_required_fields_reported():
    with pytest.raises(ConfigError, match="needs 'table', 'method'"):
        load_config(RunConfig)


def test_frozen_and_direct_construction_checked():
    cfg = load_config(RunConfig, overrides=BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.data.data_root = "/x"
    with pytest.raises(ConfigError, match="expects int"):
        DataConfig(standin_seed="1")  # direct construction is checked too (no string coercion)
    assert EvalConfig(ks=[1, 2]).ks == (1, 2)


def test_yaml_round_trip(tmp_path):
    cfg = load_config(RunConfig, overrides={**BASE, "data_root": "/d", "ks": [1, 2], "gldv2_fraction": 0.001,
                                            "scales": [1.0, 0.5], "seed": 7})
    path = save_config(cfg, tmp_path / "cfg.yaml")
    assert load_config(RunConfig, path) == cfg
    assert yaml.safe_load(path.read_text())["eval"]["ks"] == [1, 2]
    assert to_dict(cfg)["data"]["data_root"] == "/d"


def test_params_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(RunConfig, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(RunConfig, bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("table: t\nmethod: m\ndat_root: /x\n")
    with pytest.raises(ConfigError, match=r"'dat_root' \(in .*typo.yaml\).*Did you mean 'data_root'"):
        load_config(RunConfig, typo)


def test_config_from_notebook_catches_injected_typos():
    import math

    namespace = {"math": math, "print": print, "In": [], "_": None, "table": "table1_cub_pretrained",
                 "method": "stml", "data_root": None, "epochs_": 3}
    with pytest.raises(ConfigError, match="'epochs_'"):
        config_from_notebook(RunConfig, namespace)  # e.g. `papermill -p epochs_ 3`: papermill only warns
    namespace.pop("epochs_")
    cfg = config_from_notebook(RunConfig, namespace)
    assert cfg.method == "stml" and cfg.data.data_root is None
    assert notebook_parameters(namespace, ["method"]) == {"method": "stml"}
    with pytest.raises(ConfigError, match="not defined"):
        notebook_parameters(namespace, ["nope"])


@dataclasses.dataclass(frozen=True)
class _MethodConfig(Config):
    temperature: float = 0.1
    epochs: int = 1


def test_run_and_method_configs_from_one_flat_parameter_set(tmp_path):
    classes = {"run": RunConfig, "method": _MethodConfig}
    f = tmp_path / "m.yaml"
    f.write_text("temperature: 5e-2\ndata_root: /data\n")
    cfgs = load_configs(classes, f, {**BASE, "epochs": 3, "run.seed": 4})
    assert cfgs["method"] == _MethodConfig(temperature=0.05, epochs=3)
    assert cfgs["run"].data.data_root == "/data" and cfgs["run"].seed == 4
    with pytest.raises(ConfigError, match="Did you mean 'temperature'"):
        load_configs(classes, overrides={**BASE, "temprature": 0.2})
    with pytest.raises(ConfigError, match="several configs"):
        load_configs({"a": _Seeded, "b": _Seeded}, overrides={"seed": 1})
    nb = config_from_notebook(classes, {**BASE, "temperature": 0.2, "np": pytest})
    assert nb["method"].temperature == 0.2
