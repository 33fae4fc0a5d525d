"""kerasapps.testing's contract check, and the core's run behaviour, on the fake plugin of tests/plugins."""

import json

import pytest

from tests.conftest import FAKE, FAKE_ENV, ROOT, cli
from kerasapps.testing import ContractError, check_task, write_scene_images

pytestmark = pytest.mark.slow


def test_contract_check_on_the_fake_plugin_and_predict_keeps_same_stem_outputs_apart(tmp_path):
    first = write_scene_images(tmp_path / "a", count=1)[0]
    second = tmp_path / "b" / "scene0.jpg"  # the same stem as the first, another format and folder
    second.parent.mkdir()
    second.write_bytes(write_scene_images(tmp_path / "c", count=2)[1].read_bytes())
    result = check_task("fake", tmp_path / "check", inputs=[first, second], plugins=["kerasapps_fake"],
                        pythonpath=[ROOT / "tests" / "plugins"], run_args=["--epochs", "1"])
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    assert result.metrics["examples"] == 32  # the task's own metric, from its evaluate hook
    assert result.export_path.name == "1" and (result.export_path / "saved_model.pb").is_file()
    assert result.serving["colour"]["shape"] == [2] and result.serving["scores"]["shape"][0] == 2
    from kerasapps.data import shapes

    assert [p["colour"] in shapes.COLOURS for p in result.predictions] == [True, True]
    written = [p["preview_bytes"] for p in result.predictions]
    assert written[0] != written[1]  # a.png and a.jpg used to write one file, the second over the first
    assert sorted(p.name for p in (tmp_path / "check" / "predictions").iterdir()) == [
        "scene0_jpg_preview.png", "scene0_preview.png"]


def test_contract_check_names_the_failing_step(tmp_path):
    with pytest.raises(ContractError, match="train failed"):
        check_task("fake", tmp_path, inputs=[], plugins=["kerasapps_fake"], pythonpath=[ROOT / "tests" / "plugins"],
                   run_args=["--set", "units=many"])


def test_data_only_fields_do_not_refuse_a_resume(tmp_path):
    where = ["--workdir", tmp_path / "run"]
    cli(*FAKE, "train", "fake", *where, env=FAKE_ENV, check=0)
    more = cli(*FAKE, "train", "fake", "--epochs", "2", "--set", "train_examples=96", *where, env=FAKE_ENV, check=0)
    assert "resuming fake" in more.stdout and "epoch 2/2" in more.stdout
    refused = cli(*FAKE, "train", "fake", "--epochs", "3", "--set", "units=4", *where, env=FAKE_ENV, check=2)
    assert "different config (units changed)" in refused.stderr


def test_switching_off_by_task_name_and_running_a_switched_off_task(tmp_path):
    listed = cli(*FAKE, "-p", "no:fake", "-p", "no:nosuchthing", "list", "--json", env=FAKE_ENV, check=0)
    data = json.loads(listed.stdout)
    assert "fake" not in {t["task"] for t in data["tasks"]}
    assert {d["plugin"]: d["why"] for d in data["disabled_plugins"]}["kerasapps_fake"] == \
        "switched off with -p no:fake"
    assert "-p no:nosuchthing matches no kerasapps plugin, distribution or task" in listed.stderr
    assert "no:fake matches" not in listed.stderr
    ran = cli(*FAKE, "-p", "no:fake", "run", "fake", env=FAKE_ENV, check=2)
    assert "task 'fake' is provided by plugin 'kerasapps_fake'" in ran.stderr
    assert "which is switched off with -p no:fake" in ran.stderr
    by_dist = cli("-p", "no:kerasapps-classification", "run", "classification", check=2)
    assert "switched off with -p no:kerasapps-classification" in by_dist.stderr
    autoload_off = cli("run", "classification", env={"KERASAPPS_DISABLE_PLUGIN_AUTOLOAD": "1"}, check=2)
    assert "KERASAPPS_DISABLE_PLUGIN_AUTOLOAD is set (add -p classification)" in autoload_off.stderr


def test_list_has_a_plugins_section():
    text = cli(*FAKE, "list", env=FAKE_ENV, check=0).stdout
    section = text.split("plugins:\n", 1)[1]
    assert "kerasapps_fake" in section and "(-p option)" in section
    assert ["classification", "kerasapps-classification", "0.1.0", "kerasapps_classification"] in [
        line.split() for line in section.splitlines()]
    data = json.loads(cli("list", "--json", check=0).stdout)
    assert {"plugin": "builtin", "module": "kerasapps.builtin", "distribution": "kerasapps",
            "version": data["plugins"][-1]["version"]} in data["plugins"]
