"""The documentation cannot drift from the code.

- The site builds with ``mkdocs build --strict`` (a broken link or anchor fails) and every page is in its navigation.
- The README's links resolve, and its headline figures are the ones on the task pages they link to.
- Every ``kerasapps`` command in a ```` ```text ```` block parses against the real CLI.
- Every ```` ```bash ```` and ```` ```python ```` block of README.md and docs/ runs, in order, in one scratch folder,
  with tiny settings added to training commands (a block that only lists a file, ``# name.py`` on its first line,
  is a plugin's source: tests/test_third_party_plugin.py builds and runs it).
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import subprocess
import sys
import warnings

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT

DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
# Added after a documented training command: tiny data, one short epoch. Per task, since each task's config differs.
TINY = {
    "classification": "--set train_examples=128 --set eval_examples=32 --set image_size=32",
    "segmentation": "--set train_examples=64 --set eval_examples=32 --set image_size=32",
    "captioning": "--set train_examples=96 --set eval_examples=16 --set image_size=32 --set cnn_filters=8,16,16 "
                  "--set lstm_units=32 --set embed_dim=16",
    "tagging": "--set train_examples=96 --set eval_examples=16 --set image_size=32 --set cnn_filters=8,16",
    "matching": "--set train_examples=96 --set eval_examples=16 --set image_size=32 --set cnn_filters=8,16",
    "translation": "--set train_examples=600 --set eval_examples=16 --set units=32 --set embed_dim=16 --set beam_size=2",
    "pix2pix": "--batch-size 16 --set train_examples=32 --set eval_examples=16 --set image_size=32 "
               "--set generator_filters=8 --set discriminator_filters=8",
    "text-to-image": "--batch-size 16 --set image_size=16 --set train_examples=32 --set eval_examples=16 "
                     "--set generator_filters=16 --set discriminator_filters=8 --set lstm_units=16 --set embed_dim=16 "
                     "--set z_dim=16 --set cond_dim=16 --set judge_examples=64 --set judge_epochs=1 --set grid_draws=2",
}
TRAINING_COMMANDS = {"run", "train", "evaluate", "export"}
# Documented commands that another test already runs the same way (the suite runs them once, not twice):
# the start of the command -> (the test file, what it must contain for that to stay true).
RUN_ELSEWHERE = {
    "python -m benchmarks --tiny": ("tests/test_benchmarks.py", '"-m", "benchmarks", "--tiny"'),
    "kerasapps launch --workers 2 classification": ("plugins/classification/tests/test_classification_multi_worker.py",
                                                    '"--workers", 2, "classification"'),
}
# A task page's "run TASK, then predict on its export" block is exactly what the task's own tests
# do (a tiny `run`, then `kerasapps predict` on the export through kerasapps.testing.check_export):
# the suite runs it there, once. The block's commands are still parsed against the real CLI
# (test_site_builds_strictly_with_every_page_in_the_navigation).
BLOCKS_RUN_ELSEWHERE = {
    ("segmentation.md", "kerasapps run segmentation"): "plugins/segmentation/tests/test_segmentation.py",
    ("captioning.md", "kerasapps run captioning"): "plugins/captioning/tests/test_captioning.py",
    ("translation.md", "kerasapps run translation"): "plugins/translation/tests/test_translation.py",
    ("text-to-image.md", "kerasapps run text-to-image"): "plugins/text_to_image/tests/test_text_to_image.py",
}


def nav_pages():
    """The site's pages in navigation order."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def walk(items):
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from walk(value) if isinstance(value, list) else [value]

    return [DOCS / page for page in walk(config["nav"])]


def blocks(path):
    """(language, body) of each fenced block of a Markdown file."""
    return FENCE.findall(path.read_text())


def commands(body):
    """Shell command lines of a block: continuations joined, comments and blank lines dropped."""
    lines = []
    for line in body.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def documented_pages():
    return [ROOT / "README.md", *nav_pages()]


def test_site_builds_strictly_with_every_page_in_the_navigation(tmp_path):
    pages = {p.resolve() for p in nav_pages()}
    on_disk = {p.resolve() for pattern in ("*.md", "*.ipynb") for p in DOCS.rglob(pattern)}
    assert on_disk - pages == set(), "pages missing from mkdocs.yml's nav"
    assert pages - on_disk == set(), "nav names pages that do not exist"
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                           cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "tasks" / "captioning" / "index.html").is_file()
    # Notebooks are pages, with their saved outputs (a picture the predictor drew).
    assert "data:image/png;base64," in (tmp_path / "site" / "notebooks" / "quickstart" / "index.html").read_text()
    # RESULTS.md is included into the benchmarks page, not copied.
    assert "Training throughput" in (tmp_path / "site" / "benchmarks" / "index.html").read_text()


def test_readme_links_resolve_and_it_stays_a_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 10_500
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_readme_headline_figures_are_the_task_pages_figures():
    text = (ROOT / "README.md").read_text()
    table = text.split("## Tasks", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) >= 6
    for row in rows:
        page = ROOT / re.search(r"\]\(([^)]+)\)", row).group(1)
        figures = re.findall(r"\*\*([\d.,%]+)\*\*", row)
        assert figures, row
        # The figure stands on the task page, or on a study the task page links to.
        texts = [page.read_text()] + [(page.parent / link).read_text()
                                      for link in re.findall(r"\]\(([^)#:]+\.md)", page.read_text())]
        for figure in figures:
            assert any(figure in text for text in texts), f"{figure} (README) is not on {page.name} or its studies"


def test_every_documented_kerasapps_command_parses():
    from kerasapps.cli import cli

    checked = 0
    for page in documented_pages():
        for language, body in blocks(page):
            if language not in ("text", "bash", ""):
                continue
            for line in commands(body):
                line = re.split(r"\s{2,}", line)[0].split(" && ")[-1]  # drop a synopsis's description
                if not line.startswith("kerasapps ") or re.search(r"\w\|\w|\.\.\.|\[|[A-Z]{4,}", line):
                    continue  # not a command, or a synopsis with placeholders
                words = shlex.split(line)[1:]
                for index, word in enumerate(words):
                    if word in ("&", "|", ";", ">", "&&"):  # the shell's part of the line
                        words = words[:index]
                        break
                parse(cli, words)
                checked += 1
    assert checked >= 10


def parse(cli, args):
    """Parse ``kerasapps ARGS`` with click, options and arguments, without running it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = cli.make_context("kerasapps", list(args))
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, command, rest = cli.resolve_command(ctx, rest)
        sub = command.make_context(name, rest, parent=ctx)
        if name == "launch":
            parse(cli, ["run", sub.params["task"], *sub.params["run_args"]])


def tiny(line):
    """The documented command with tiny settings appended to a training command."""
    words = shlex.split(line)
    if words[:1] != ["kerasapps"]:
        return line
    rest = [w for w in words[1:] if not w.startswith("-")]
    if rest[:1] == ["launch"]:
        task = next(w for w in words[2:] if not w.startswith("-") and not w.isdigit())
    elif rest[:1] and rest[0] in TRAINING_COMMANDS and len(rest) > 1:
        task = rest[1]
    else:
        return line
    return f"{line} --epochs 1 --steps-per-epoch 2 {TINY[task]}"


def make_inputs(line, workspace):
    """Files a documented command reads that the reader would bring: pictures, a folder of class folders."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for word in shlex.split(line):
        word = word.removeprefix("folder:")
        path = workspace / word
        if re.fullmatch(r"[\w./-]+\.(png|jpg)", word) and not path.exists():
            Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
        elif word == "my_images" and not path.exists():
            for label in ("cat", "dog"):
                (path / label).mkdir(parents=True)
                for index in range(12):
                    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path / label / f"{index}.png")


def runnable():
    """(page, language, code) of every runnable block, README first, then the site in navigation order."""
    for page in documented_pages():
        for language, body in blocks(page):
            if language == "python" and not re.match(r"# \S+\.py\n", body):
                yield page, "python", body
            elif language == "bash":
                yield page, "bash", commands(body)


def install_arguments(line):
    return sorted(shlex.split(line.split("&&")[0])[2:])


@pytest.mark.slow
def test_every_documented_command_and_python_block_runs(tmp_path):
    ci = (ROOT / ".ci" / "run").read_text()
    ci_install = install_arguments(next(l for l in ci.splitlines() if l.startswith("pip install") and "pytest" in l))
    # Commands are documented as run from the repository root (`python -m benchmarks`); they run in a scratch
    # folder here, so the root goes on the import path instead.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    trained, ran = set(), 0
    for page, language, code in runnable():
        if language == "python":
            script = tmp_path / "block.py"
            script.write_text(code)
            argv = [sys.executable, str(script)]
        else:
            covered = BLOCKS_RUN_ELSEWHERE.get((page.name, code[0]))
            if covered and [line.split()[:2] for line in code] == [["kerasapps", "run"], ["kerasapps", "predict"]]:
                source = (ROOT / covered).read_text()
                task = code[0].split()[2]
                assert f'cli("run", "{task}"' in source and "check_export(" in source, (page.name, covered)
                continue
            lines = []
            for line in code:
                if line.startswith("pip install"):
                    # Installing is what CI does before the tests: documented installs must be CI's (less the extra).
                    assert set(install_arguments(line)) <= set(ci_install) | {"."}, line
                    line = line.split("&&", 1)[1].strip() if "&&" in line else ""
                    if not line or "pytest" in line:
                        continue
                elsewhere = next((v for k, v in RUN_ELSEWHERE.items() if line.startswith(k)), None)
                if elsewhere:
                    test_file, evidence = elsewhere
                    assert evidence in (ROOT / test_file).read_text(), (line, test_file)
                    continue
                if tiny(line) != line:  # a training command: once is enough, its outputs stay in the folder
                    if line in trained:
                        continue
                    trained.add(line)
                make_inputs(line, tmp_path)
                lines.append(tiny(line))
            if not lines:
                continue
            argv = ["bash", "-euo", "pipefail", "-c", "\n".join(lines)]  # one block, one script: variables carry
        result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{page.name}: {code}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        ran += 1
    assert ran >= 10


def table_cells(row):
    """The cells of a Markdown table row: split at pipes that are neither escaped nor in code."""
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    cells, cell, in_code, previous = [], "", False, ""
    for char in row:
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code and previous != "\\":
            cells.append(cell)
            cell = ""
        else:
            cell += char
        previous = char
    return [*cells, cell]


def test_every_table_row_is_a_row_of_its_table():
    """A line inside a table that lost its leading pipe, or a row with more or fewer cells than the header,
    renders as broken text or a shifted column (an edit once left 'SIZE120_ROW| ...' in a study's table)."""
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md")), *sorted((ROOT / "benchmarks").glob("*.md"))]
    problems = []
    for page in pages:
        text = FENCE.sub(lambda match: "\n" * match.group(0).count("\n"), page.read_text())
        lines = text.splitlines()
        for number, line in enumerate(lines):
            is_header = (line.startswith("|") and number + 1 < len(lines)
                         and re.fullmatch(r"\|?(\s*:?-{3,}:?\s*\|)+\s*:?-*:?\s*", lines[number + 1].strip()))
            if not is_header:
                continue
            width = len(table_cells(line))
            row = number + 2
            while row < len(lines) and lines[row].strip():
                if not lines[row].startswith("|"):
                    problems.append(f"{page.relative_to(ROOT)}:{row + 1}: not a table row: {lines[row][:60]}")
                elif len(table_cells(lines[row])) != width:
                    problems.append(f"{page.relative_to(ROOT)}:{row + 1}: {len(table_cells(lines[row]))} cells, "
                                    f"the header has {width}")
                row += 1
    assert not problems, "\n".join(problems)
