"""docs/plugins.md is real: its example plugin and the plugin's own test, taken from the page and run."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
GUIDE = ROOT / "docs" / "plugins.md"


def guide_files():
    """Code blocks of docs/plugins.md whose first line is `# <file name>`."""
    files = {}
    for block in re.findall(r"```\w*\n(.*?)```", GUIDE.read_text(), flags=re.S):
        first, _, body = block.partition("\n")
        match = re.fullmatch(r"# (\S+\.(?:py|toml))", first.strip())
        if match:
            files[match.group(1)] = body
    return files


def test_shell_blocks_are_marked_bash_or_text():
    fences = re.findall(r"^```(\w*)$", GUIDE.read_text(), flags=re.M)
    openings = fences[::2]
    assert set(openings) <= {"bash", "text", "python", "toml"}, openings


def test_guide_example_plugin_passes_its_own_contract_test(tmp_path):
    files = guide_files()
    assert set(files) == {"pyproject.toml", "colour_task.py", "test_colour_task.py"}
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    # Registered as pip would, without installing: a dist-info with the page's entry points on PYTHONPATH.
    toml = files["pyproject.toml"]
    name, version = (re.search(rf'^{key} = "(.+)"$', toml, flags=re.M).group(1) for key in ("name", "version"))
    entry_points = toml.split("[project.entry-points.kerasapps]\n", 1)[1].split("\n\n", 1)[0]
    info = tmp_path / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[kerasapps]\n" + entry_points.replace('"', "") + "\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_colour_task.py"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
