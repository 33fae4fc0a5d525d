"""kerasapps.testing's contract check, and the core's run behaviour, on the fake plugin of tests/plugins."""

import json
import os
import sys

import pytest

import kerasapps
from tests.conftest import FAKE, FAKE_ENV, ROOT, cli, make_distribution
from kerasapps.testing import ContractError, check_task, write_scene_images

pytestmark = pytest.mark.slow
sys.path.insert(0, str(ROOT / "tests" / "plugins"))  # the fake plugin, loaded in-process with plugins=[...]
PLUGINS = ["kerasapps_fake"]


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


def test_data_only_fields_do_not_refuse_a_resume(tmp_path, capsys):
    where = {"plugins": PLUGINS, "workdir": tmp_path / "run"}
    kerasapps.train("fake", verbose=0, **where)
    capsys.readouterr()
    more = kerasapps.train("fake", epochs=2, train_examples=96, verbose=2, **where)
    out = capsys.readouterr().out
    assert "resuming fake" in out and "epoch 2/2" in out and [h["epoch"] for h in more.history] == [1, 2]
    with pytest.raises(kerasapps.UsageError, match=r"different config \(units changed\)"):
        kerasapps.train("fake", epochs=3, units=4, verbose=0, **where)


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
    # The fake task installed as a distribution (faketasks, entry point fakedist).
    make_distribution(tmp_path, "faketasks", "fakedist_plugin",
                      "from kerasapps.api import TaskSpec, hookimpl\n\n@hookimpl\ndef kerasapps_register_tasks():\n"
                      "    return [TaskSpec('fake', 'kerasapps_fake:FakeTask', 'the fake task, installed')]\n",
                      entry_name="fakedist")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), FAKE_ENV["PYTHONPATH"]])}
    by_dist = cli("-p", "no:faketasks", "run", "fake", env=env, check=2)
    assert "switched off with -p no:faketasks" in by_dist.stderr
    autoload_off = cli("run", "fake", env={"KERASAPPS_DISABLE_PLUGIN_AUTOLOAD": "1", **env}, check=2)
    assert "KERASAPPS_DISABLE_PLUGIN_AUTOLOAD is set (add -p fakedist)" in autoload_off.stderr


def test_list_has_a_plugins_section(tmp_path):
    # An installed plugin (entry point recorder of recorderdist 1.2) beside the -p one.
    make_distribution(tmp_path, "recorderdist", "recorder_plugin",
                      "from kerasapps.api import hookimpl\n\n@hookimpl\n"
                      "def kerasapps_training_callbacks(task, config, workdir):\n    return []\n",
                      entry_name="recorder")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), FAKE_ENV["PYTHONPATH"]])}
    text = cli(*FAKE, "list", env=env, check=0).stdout
    section = text.split("plugins:\n", 1)[1]
    assert "kerasapps_fake" in section and "(-p option)" in section
    assert ["recorder", "recorderdist", "1.2", "recorder_plugin"] in [line.split() for line in section.splitlines()]
    data = json.loads(cli("list", "--json", check=0).stdout)
    assert {"plugin": "builtin", "module": "kerasapps.builtin", "distribution": "kerasapps",
            "version": data["plugins"][-1]["version"]} in data["plugins"]
