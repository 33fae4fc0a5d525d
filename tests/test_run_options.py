"""The run's seams, without TensorFlow: options declared once, the workdir's resume rule."""

import dataclasses
import json
import pathlib

import pytest

from kerasapps.errors import UsageError
from kerasapps.training.options import RUN_KEYS, RUN_OPTIONS, RunOptions
from kerasapps.training.workdir import Workdir


def test_one_table_makes_the_cli_options_the_dataclass_and_the_saved_keys():
    from kerasapps.cli import run

    cli_names = {p.name for p in run.params} - {"task", "print_config", "fresh", "samples"}
    assert cli_names == {o.name for o in RUN_OPTIONS}
    fields = {f.name for f in dataclasses.fields(RunOptions)}
    assert {o.name for o in RUN_OPTIONS} <= fields
    assert RUN_KEYS == ("dataset", "data_dir", "strategy", "tpu", "precision", "jit_compile", "seed", "workdir",
                        "export_dir")


def resolved(**params):
    return {"dataset": "shapes", "params": {"epochs": 1, "units": 8, "train_examples": 64, **params}}


def test_resume_refuses_model_changes_but_not_data_fields(tmp_path):
    folder = Workdir(tmp_path)
    folder.backup.mkdir()
    folder.config_file.write_text(json.dumps(resolved()))
    folder.check_resumable(resolved(epochs=5))  # epochs may change
    folder.check_resumable(resolved(train_examples=128), data_fields=("train_examples",))
    with pytest.raises(UsageError, match=r"\(train_examples changed\)"):
        folder.check_resumable(resolved(train_examples=128))
    with pytest.raises(UsageError, match=r"\(units changed\)"):
        folder.check_resumable(resolved(units=4), data_fields=("train_examples",))


def test_metrics_keep_the_training_record_of_an_earlier_run(tmp_path):
    folder = Workdir(tmp_path)
    folder.write_metrics({"history": [1], "epochs_completed": 1, "metrics": {"a": 1}})
    folder.write_metrics({"metrics": {"a": 2}})
    data = json.loads(folder.metrics_file.read_text())
    assert data == {"metrics": {"a": 2}, "history": [1], "epochs_completed": 1}


@pytest.mark.parametrize("restore_best", [True, False])
def test_restore_best_weights_chooses_the_weights_evaluate_reads(tmp_path, restore_best):
    """Default: the best validation epoch's file; false: no best file is kept and evaluate reads
    the last epoch's weights (the backup), so validation picks nothing."""
    import sys

    import kerasapps
    from tests.conftest import ROOT

    sys.path.insert(0, str(ROOT / "tests" / "plugins"))  # the fake plugin, loaded in-process
    workdir = tmp_path / "run"
    settings = {"plugins": ["kerasapps_fake"], "workdir": workdir, "restore_best_weights": restore_best, "verbose": 0}
    trained = kerasapps.train("fake", epochs=2, **settings)
    assert (workdir / "best.weights.h5").exists() == restore_best, trained.history
    evaluated = kerasapps.evaluate("fake", **settings)
    metrics = json.loads((workdir / "metrics.json").read_text())
    expected = workdir / ("best.weights.h5" if restore_best else "backup")
    assert pathlib.Path(metrics["weights"]) == expected, evaluated.metrics
