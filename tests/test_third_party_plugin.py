"""The plugin guide (docs/plugins.md) is real: build its plugin, pip install it, list, run, export, uninstall."""

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, cli

pytestmark = pytest.mark.slow


def readme_files():
    """Code blocks of the plugin guide whose first line is `# <file name>`."""
    section = (ROOT / "docs" / "plugins.md").read_text()
    files = {}
    for block in re.findall(r"```\w*\n(.*?)```", section, flags=re.S):
        first, _, body = block.partition("\n")
        match = re.fullmatch(r"# (\S+\.(?:py|toml))", first.strip())
        if match:
            files[match.group(1)] = body
    return files


def pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def test_readme_plugin_installs_lists_runs_exports_and_uninstalls(tmp_path):
    files = readme_files()
    assert set(files) == {"pyproject.toml", "colour_task.py", "test_colour_task.py"}
    source = tmp_path / "kerasapps-colour"
    source.mkdir()
    for name, body in files.items():
        (source / name).write_text(body)
    installed = pip("install", "--no-build-isolation", "--no-deps", "--quiet", str(source))
    assert installed.returncode == 0, installed.stderr
    try:
        listed = json.loads(cli("list", "--json", check=0).stdout)
        task = {t["task"]: t for t in listed["tasks"]}["colour"]
        assert (task["distribution"], task["version"]) == ("kerasapps-colour", "0.1.0")
        work = tmp_path / "work"
        work.mkdir()
        result = cli("run", "colour", "--epochs", "1", cwd=work, check=0)
        assert "exported: saved_models/colour/1" in result.stdout
        png = tmp_path / "scene.png"
        import tensorflow as tf

        from kerasapps.data import shapes

        png.write_bytes(tf.io.encode_png(shapes.generate_scene(0, "test", image_size=32)["image"]).numpy())
        (record,) = [json.loads(line) for line in
                     cli("predict", work / "saved_models/colour/1", png, "--json", check=0).stdout.splitlines()]
        assert record["colour"] in shapes.COLOURS
    finally:
        removed = pip("uninstall", "--yes", "kerasapps-colour")
    assert removed.returncode == 0, removed.stderr
    listed = json.loads(cli("list", "--json", check=0).stdout)
    assert "colour" not in {t["task"] for t in listed["tasks"]}
