"""Execute the notebooks in this folder with their own settings and save them with their outputs,
as the documentation site shows them (tests/test_notebooks.py executes them with small settings).

    python docs/notebooks/refresh.py                 # every notebook (minutes on a CPU)
    python docs/notebooks/refresh.py quickstart      # one

Each runs in a fresh python3 kernel in a scratch folder. Saved outputs are tidied for reading:
Keras's progress bar keeps its last drawing per line (what a live cell ends up showing), and the
start-up lines TensorFlow's C++ runtime writes to the terminal are left out.
"""

from __future__ import annotations

import pathlib
import re
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
# Lines TensorFlow's C++ runtime prints at start-up (CUDA probing, CPU features, absl's notice).
RUNTIME_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\).*|[IWE]\d{4} .*\.cc:\d+\] .*|"
                           r"To enable the following instructions: .*)$")


def drawn(text: str) -> str:
    """What a terminal shows for ``text``: a carriage return restarts its line, a backspace erases."""
    lines = []
    for line in text.split("\n"):
        shown: list[str] = []
        for char in line:
            if char == "\r":
                shown.clear()
            elif char == "\b":
                if shown:
                    shown.pop()
            else:
                shown.append(char)
        lines.append("".join(shown))
    return "\n".join(line for line in lines if not RUNTIME_NOISE.match(line))


def tidy(book):
    """Merge each cell's consecutive stream outputs, draw them as a terminal would, drop empty ones."""
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            if (output.output_type == "stream" and outputs and outputs[-1].output_type == "stream"
                    and outputs[-1].name == output.name):
                outputs[-1].text += output.text
            else:
                outputs.append(output)
        for output in outputs:
            if output.output_type == "stream":
                output.text = drawn(output.text)
        cell.outputs = [o for o in outputs if o.output_type != "stream" or o.text.strip()]
    return book


def refresh(name: str) -> None:
    import nbclient
    import nbformat

    path = HERE / f"{name}.ipynb"
    book = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        nbclient.NotebookClient(book, timeout=3600, kernel_name="python3",
                                resources={"metadata": {"path": scratch}}).execute()
    nbformat.write(tidy(book), path)
    print(f"{path.name}: executed and saved", flush=True)


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(p.stem for p in HERE.glob("*.ipynb")):
        refresh(name)
