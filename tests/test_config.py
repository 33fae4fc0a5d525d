import dataclasses
from typing import Literal, Optional

import pytest

from kerasapps.config import TaskConfig, apply_overrides, describe_fields, field, load_config_file, parse_set_options
from kerasapps.errors import UsageError


@dataclasses.dataclass
class DemoConfig(TaskConfig):
    units: int = field(64, "hidden units")
    rate: float = field(0.5, "a rate")
    model: Literal["a", "b"] = field("a", "which model")
    sizes: tuple[int, ...] = field((1, 2), "sizes")
    size: Optional[int] = field(None, "optional size")
    flag: bool = field(False, "a flag")


def test_overrides_are_typed_by_the_dataclass():
    cfg = apply_overrides(DemoConfig(), {"units": "128", "rate": "0.25", "model": "b", "sizes": "3,4,5",
                                         "size": "7", "flag": "true", "epochs": 3})
    assert (cfg.units, cfg.rate, cfg.model, cfg.sizes, cfg.size, cfg.flag, cfg.epochs) == (
        128, 0.25, "b", (3, 4, 5), 7, True, 3)
    assert apply_overrides(cfg, {"size": "none"}).size is None


@pytest.mark.parametrize("key,value,fragment", [
    ("unitz", "1", "did you mean 'units'"),
    ("units", "many", "units: expected int"),
    ("units", "1.5", "units: expected int"),
    ("model", "c", "expected one of a, b"),
    ("flag", "maybe", "expected true or false"),
    ("sizes", "1,x", "sizes"),
])
def test_bad_overrides_name_the_problem(key, value, fragment):
    with pytest.raises(UsageError, match=fragment):
        apply_overrides(DemoConfig(), {key: value})


def test_set_options_and_config_files(tmp_path):
    assert parse_set_options(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_set_options(["novalue"])
    (tmp_path / "c.yaml").write_text("units: 32\nparams:\n  rate: 0.1\n")
    assert load_config_file(tmp_path / "c.yaml") == {"units": 32, "params": {"rate": 0.1}}
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_config_file(tmp_path / "bad.json")
    with pytest.raises(UsageError, match="cannot read"):
        load_config_file(tmp_path / "missing.yaml")


def test_describe_fields_lists_types_defaults_and_help():
    rows = {r["name"]: r for r in describe_fields(DemoConfig)}
    assert rows["units"] == {"name": "units", "type": "int", "default": 64, "help": "hidden units"}
    assert rows["size"]["type"] == "int | None"
    assert rows["epochs"]["default"] == 10


@dataclasses.dataclass
class ChoicesConfig(TaskConfig):
    channels: Optional[int] = field(None, "1 or 3", choices=(1, 3))
    mode: str = field("fast", "how", choices=("fast", "exact"))
    kinds: tuple[str, ...] = field(("a",), "kinds", choices=("a", "b"))


@dataclasses.dataclass
class RedeclaredChoicesConfig(ChoicesConfig):
    mode: str = field("exact", "how, exact by default")


def test_describe_fields_shows_choices_as_it_shows_a_literal():
    rows = {r["name"]: r["type"] for r in describe_fields(ChoicesConfig)}
    assert rows["mode"] == "'fast' | 'exact'"  # as `Literal["fast", "exact"]` shows
    assert rows["channels"] == "1 | 3 | None"
    assert rows["kinds"] == "tuple['a' | 'b']"
    assert {r["name"]: r["type"] for r in describe_fields(RedeclaredChoicesConfig)}["mode"] == "'fast' | 'exact'"


def test_bfloat16_instructions_are_read_from_the_cpu_flags(tmp_path):
    from kerasapps.training.distribute import cpu_has_bf16_instructions

    flags = {"sapphire_rapids": "fpu avx512f avx512_bf16 amx_bf16 amx_tile", "zen4": "fpu avx2 avx512f avx512_bf16",
             "amx_only": "fpu amx_bf16 amx_tile", "zen3": "fpu avx2 fma", "ice_lake": "fpu avx512f avx512_vnni"}
    for name, line in flags.items():
        (tmp_path / name).write_text(f"processor\t: 0\nflags\t\t: {line}\n")
    assert [cpu_has_bf16_instructions(str(tmp_path / name)) for name in flags] == [True, True, True, False, False]
    assert cpu_has_bf16_instructions(str(tmp_path / "missing")) is False


@pytest.mark.parametrize("bf16, task_allows, expected", [
    (True, True, "mixed_bfloat16"),
    (True, False, "float32"),
    (False, True, "float32"),
])
def test_auto_precision_on_cpu_is_bfloat16_only_for_allowing_tasks_with_bf16_instructions(monkeypatch, bf16,
                                                                                         task_allows, expected):
    import tensorflow as tf

    from kerasapps.training import distribute

    monkeypatch.setattr(distribute, "cpu_has_bf16_instructions", lambda: bf16)
    strategy = tf.distribute.get_strategy()
    assert distribute.resolve_precision("auto", strategy, cpu_bfloat16=task_allows) == expected
    assert distribute.resolve_precision("float32", strategy, cpu_bfloat16=task_allows) == "float32"
    with pytest.raises(UsageError, match="unknown precision 'half'"):
        distribute.resolve_precision("half", strategy)


def test_evaluate_and_export_start_from_the_config_the_workdir_was_trained_with(tmp_path, monkeypatch):
    import json

    from tests.conftest import FAKE_ENV
    from kerasapps.registry import discover
    from kerasapps.training.runner import RunOptions, resolve_config

    workdir = tmp_path / "run"
    workdir.mkdir()
    saved = {"task": "fake", "seed": 7, "params": {"epochs": 3, "batch_size": 64}}
    (workdir / "config.json").write_text(json.dumps(saved))
    monkeypatch.syspath_prepend(FAKE_ENV["PYTHONPATH"])
    registry = discover(["kerasapps_fake"])

    def resolved(**options):
        return resolve_config(registry, RunOptions(task="fake", workdir=str(workdir), **options))[1]

    trained = resolved(use_workdir_config=True)
    assert (trained["seed"], trained["params"]["epochs"], trained["params"]["batch_size"]) == (7, 3, 64)
    overridden = resolved(use_workdir_config=True, batch_size=8, overrides={"epochs": 5})
    assert (overridden["params"]["epochs"], overridden["params"]["batch_size"]) == (5, 8)
    fresh = resolved()  # train and run: the defaults and what the command line says
    assert fresh["seed"] == 0 and fresh["params"]["batch_size"] != 64


@pytest.mark.parametrize("accelerator, flag, expected", [
    ("cpu", None, False), ("cpu", False, False), ("gpu", None, False), ("gpu", False, False),
    ("cpu", True, "--jit-compile: "), ("gpu", True, "--jit-compile: "), ("tpu", None, "cannot train on a TPU"),
])
def test_a_config_whose_step_xla_cannot_compile_turns_xla_off_or_is_refused(monkeypatch, capsys, accelerator, flag,
                                                                             expected):
    import tensorflow as tf

    from kerasapps.training import distribute

    monkeypatch.setattr(distribute, "_accelerator", lambda strategy: accelerator)
    strategy = tf.distribute.get_strategy()
    problem = "reward=host scores in Python"
    if isinstance(expected, str):
        with pytest.raises(UsageError, match=f"{expected}.*reward=host scores in Python"):
            distribute.resolve_jit_compile(flag, strategy, problem)
        return
    assert distribute.resolve_jit_compile(flag, strategy, problem) is expected
    # XLA's default on an accelerator is on: the run says why it is not.
    noted = "note: XLA is off for this run" in capsys.readouterr().out
    assert noted == (accelerator == "gpu" and flag is None)
    # Without a problem the defaults stand: on for GPU, off for CPU, the flag wins.
    assert distribute.resolve_jit_compile(None, strategy) is (accelerator == "gpu")
    assert distribute.resolve_jit_compile(True, strategy) is True
