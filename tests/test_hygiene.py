"""Hygiene of the saved notebooks, and proof that the nbval sanitizer is neither too weak nor too strong.

The notebooks in notebooks/ and solutions/ are executed and saved with their outputs (those
outputs are nbval's references); the ones in exercises/ are shipped clean.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

REPO = Path(__file__).resolve().parent.parent
SANITIZE_FILE = REPO / "tests" / "nbval_sanitize.cfg"
MAX_NOTEBOOK_BYTES = 3_000_000

# Paths that exist on one machine only. Checked in cell sources and in sanitized text outputs
# (the sanitizer already neutralises ipykernel's and tempfile's temporary names).
MACHINE_SPECIFIC_PATH = re.compile(
    r"/root/|/tmp/|/work/|/home/[^/\s]+/|/Users/[^/\s]+/|/var/folders/|[A-Za-z]:\\Users\\|/site-packages/"
)
# Graphviz wraps every drawing in <g id="graph0" class="graph">.
GRAPHVIZ_MARK = 'class="graph"'
TEXT_MIME_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "image/svg+xml")


def notebooks_in(folder):
    """Test parameters for the notebooks of a folder, or one skipped parameter when it has none."""
    paths = sorted((REPO / folder).glob("*.ipynb"))
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{folder}/ has no notebooks yet"))]
    return [pytest.param(path, id=f"{folder}/{path.name}") for path in paths]


EXECUTED = notebooks_in("notebooks") + notebooks_in("solutions")
EXERCISES = notebooks_in("exercises")
CHAPTERS = notebooks_in("notebooks")


def read(path):
    return nbformat.read(path, as_version=4)


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def sanitize(text):
    """Apply the nbval sanitize patterns, as nbval does before comparing."""
    for pattern, replacement in get_sanitize_patterns(SANITIZE_FILE.read_text()):
        text = re.sub(pattern, replacement, text)
    return text


def output_texts(output):
    """The text an output shows: a stream, an error, or the text-like entries of its data."""
    if output.output_type == "stream":
        yield output.text
    elif output.output_type == "error":
        yield "\n".join(output.traceback)
    else:
        for mime_type in TEXT_MIME_TYPES:
            if mime_type in output.get("data", {}):
                yield output.data[mime_type]


@pytest.mark.parametrize("path", EXECUTED + EXERCISES)
def test_kernelspec_is_python3(path):
    kernelspec = read(path).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{path.name}: kernelspec is {kernelspec!r}"


@pytest.mark.parametrize("path", EXECUTED)
def test_code_cells_were_executed_in_order(path):
    cells = code_cells(read(path))
    counts = [cell.execution_count for cell in cells if cell.source.strip()]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts}; re-run it with `python tools/execute.py {path}`"
    )
    for cell in cells:
        if not cell.source.strip():
            assert cell.execution_count is None and not cell.outputs, f"{path.name}: an empty cell has output"


@pytest.mark.parametrize("path", EXECUTED)
def test_no_error_outputs(path):
    for index, cell in enumerate(read(path).cells):
        for output in cell.get("outputs", []):
            assert output.output_type != "error", (
                f"{path.name}, cell {index}: {output.ename}: {output.evalue} "
                "(to show an error, catch it and print its message)"
            )


@pytest.mark.parametrize("path", EXECUTED + EXERCISES)
def test_no_machine_specific_paths(path):
    for index, cell in enumerate(read(path).cells):
        texts = [cell.source] + [sanitize(text) for output in cell.get("outputs", [])
                                 for text in output_texts(output)]
        for text in texts:
            found = MACHINE_SPECIFIC_PATH.search(text)
            assert found is None, (
                f"{path.name}, cell {index}: machine-specific path "
                f"{text[max(found.start() - 40, 0):found.end() + 40]!r}"
            )


@pytest.mark.parametrize("path", EXECUTED)
def test_no_memory_addresses_in_outputs(path):
    """A default repr such as "<graphviz.graphs.Digraph at 0x7f04...>" means an object without a text form
    reached the notebook; the sanitizer would hide the address from nbval, not from the learner."""
    for index, cell in enumerate(read(path).cells):
        for output in cell.get("outputs", []):
            for text in output_texts(output):
                assert not re.search(r"\bat 0x[0-9a-fA-F]+", text), f"{path.name}, cell {index}: {text[:120]!r}"


@pytest.mark.parametrize("path", CHAPTERS + notebooks_in("solutions") + EXERCISES)
def test_nbval_markers_are_cell_tags_not_comments(path):
    """nbval honours the cell tag "nbval-ignore-output"; a `# NBVAL_IGNORE_OUTPUT` comment is noise in the
    code a learner reads."""
    for index, cell in enumerate(code_cells(read(path))):
        assert "# NBVAL_" not in cell.source, f"{path.name}, code cell {index}: use the nbval-ignore-output tag"


@pytest.mark.parametrize("path", CHAPTERS)
def test_printed_output_is_saved_in_one_chunk_per_stream(path):
    """Where the kernel happened to split printed text depends on timing; tools/execute.py joins the
    chunks, so that re-executing an unchanged notebook changes only outputs that truly vary."""
    for index, cell in enumerate(code_cells(read(path))):
        for first, second in zip(cell.outputs, cell.outputs[1:]):
            assert not (first.output_type == second.output_type == "stream" and first.name == second.name), (
                f"{path.name}, code cell {index}: {first.name} saved in several chunks; re-run tools/execute.py")


SHOWN_SOURCE_WIDTH = 100  # characters of code that fit JupyterLab's output area at 1280 px, file browser open


@pytest.mark.parametrize("path", CHAPTERS)
def test_shown_source_fits_the_output_area(path):
    """JupyterLab wraps output lines anywhere, even inside a word: code shown with show_source must fit."""
    for index, cell in enumerate(code_cells(read(path))):
        for output in cell.outputs:
            code = output.get("data", {}).get("text/markdown", "")
            for line in code.splitlines() if code.startswith("```python") else []:
                assert len(line) <= SHOWN_SOURCE_WIDTH, f"{path.name}, code cell {index}: {line!r}"


def test_execute_joins_the_chunks_of_a_stream():
    spec = importlib.util.spec_from_file_location("execute", REPO / "tools" / "execute.py")
    execute = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(execute)
    stream = nbformat.v4.new_output
    outputs = [stream("stream", name="stdout", text="epoch 1\n"), stream("stream", name="stdout", text="epoch 2\n"),
               stream("stream", name="stderr", text="warning\n"), stream("stream", name="stdout", text="done\n"),
               stream("display_data", data={"text/plain": "<Figure>"}), stream("stream", name="stdout", text="after\n")]
    joined = execute.join_streams(outputs)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in joined] == [
        ("stream", "stdout", "epoch 1\nepoch 2\n"), ("stream", "stderr", "warning\n"), ("stream", "stdout", "done\n"),
        ("display_data", None, None), ("stream", "stdout", "after\n")]


@pytest.mark.parametrize("path", EXECUTED + EXERCISES)
def test_notebook_is_small(path):
    size = path.stat().st_size
    assert size < MAX_NOTEBOOK_BYTES, f"{path.name} is {size / 1e6:.1f} MB; keep notebooks under 3 MB"


@pytest.mark.parametrize("path", EXERCISES)
def test_exercises_are_shipped_without_outputs(path):
    for index, cell in enumerate(code_cells(read(path))):
        assert not cell.outputs and cell.execution_count is None, (
            f"{path.name}: code cell {index} carries outputs or an execution count"
        )


@pytest.mark.parametrize("path", CHAPTERS)
def test_chapter_shows_a_graphviz_graph_and_a_matplotlib_figure(path):
    outputs = [output.get("data", {}) for cell in code_cells(read(path)) for output in cell.outputs]
    assert any(GRAPHVIZ_MARK in data.get("image/svg+xml", "") for data in outputs), (
        f"{path.name} shows no graphviz drawing"
    )
    assert any("image/png" in data and data.get("text/plain", "").startswith("<Figure size")
               for data in outputs), f"{path.name} shows no matplotlib figure"


def test_every_solution_has_an_exercise_twin_and_back():
    solutions = {path.name for path in (REPO / "solutions").glob("*.ipynb")}
    exercises = {path.name for path in (REPO / "exercises").glob("*.ipynb")}
    if not solutions and not exercises:
        pytest.skip("solutions/ and exercises/ have no notebooks yet")
    assert solutions - exercises == set(), "solutions without an exercise notebook"
    assert exercises - solutions == set(), "exercises without a solution notebook"


# The sanitizer, through the repository's own pytest configuration (the root conftest.py,
# loaded as a plugin because the scratch notebooks live outside the repository).

SCRATCH_CELLS = [
    "print(0.25)",
    "import graphviz\ngraph = graphviz.Digraph()\ngraph.edge('x', 'loss')\ngraph",
]


def edited_copy(source, target, edit):
    """Copy a notebook, changing the saved outputs of its cells with edit(cell_index, output)."""
    notebook = read(source)
    for index, cell in enumerate(code_cells(notebook)):
        for output in cell.outputs:
            edit(index, output)
    nbformat.write(notebook, target)


def shift_layout(index, output):
    """What another graphviz version or font set does: other coordinates and version comment."""
    if "data" in output:
        svg = output.data["image/svg+xml"]
        svg = re.sub(r'\s(cx|x|points|d)="[^"]*"', r' \1="123.45"', svg)
        output.data["image/svg+xml"] = svg.replace("graphviz version", "graphviz version 99.1 (1)")


def fit_to_width(index, output):
    """What a wider layout does: minigraph's Drawing gives the SVG the width 100% and no height."""
    if "data" in output:
        svg = output.data["image/svg+xml"]
        output.data["image/svg+xml"] = re.sub(r'<svg width="[^"]*" height="[^"]*"', '<svg width="100%"', svg, count=1)


def change_printed_number(index, output):
    if output.output_type == "stream":
        output.text = output.text.replace("0.25", "0.26")


def rename_node_label(index, output):
    if "data" in output:
        output.data["image/svg+xml"] = output.data["image/svg+xml"].replace(">loss</text>", ">lost</text>")


def test_sanitizer_ignores_layout_but_not_printed_numbers_or_labels(tmp_path):
    reference = tmp_path / "reference.ipynb"
    nbformat.write(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in SCRATCH_CELLS],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    ), reference)
    subprocess.run([sys.executable, str(REPO / "tools" / "execute.py"), str(reference)],
                   check=True, capture_output=True, timeout=300)
    edits = {"layout_shifted": shift_layout, "fitted_to_width": fit_to_width, "number_changed": change_printed_number,
             "label_changed": rename_node_label}
    for name, edit in edits.items():
        edited_copy(reference, tmp_path / f"{name}.ipynb", edit)
    for name, edit in edits.items():  # each edit must really change a saved output
        assert read(tmp_path / f"{name}.ipynb") != read(reference), name

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA",
         *(f"{name}.ipynb" for name in edits)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=600,
    )
    outcomes = {cell: outcome for outcome, cell in re.findall(r"^(PASSED|FAILED) (\S+::Cell \d)",
                                                              run.stdout, re.MULTILINE)}
    assert outcomes == {
        "layout_shifted.ipynb::Cell 0": "PASSED", "layout_shifted.ipynb::Cell 1": "PASSED",
        "fitted_to_width.ipynb::Cell 0": "PASSED", "fitted_to_width.ipynb::Cell 1": "PASSED",
        "number_changed.ipynb::Cell 0": "FAILED", "number_changed.ipynb::Cell 1": "PASSED",
        "label_changed.ipynb::Cell 0": "PASSED", "label_changed.ipynb::Cell 1": "FAILED",
    }, run.stdout


# The nbval-ignore-output tag, which the notebooks use instead of a comment in the code a learner reads.

IGNORE_TAG = "nbval-ignore-output"


def test_the_installed_nbval_honours_the_ignore_output_tag(tmp_path):
    """Two cells whose saved outputs differ from what they print: only the untagged one fails."""
    cells = [nbformat.v4.new_code_cell("print(0.25)", metadata={"tags": [IGNORE_TAG]}),
             nbformat.v4.new_code_cell("print(0.5)")]
    for count, (cell, saved) in enumerate(zip(cells, ("0.26\n", "0.51\n")), start=1):
        cell.execution_count, cell.outputs = count, [nbformat.v4.new_output("stream", name="stdout", text=saved)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), tmp_path / "tagged.ipynb")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA", "tagged.ipynb"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300,
    )
    outcomes = dict(reversed(pair) for pair in re.findall(r"^(PASSED|FAILED) (\S+::Cell \d)", run.stdout, re.MULTILINE))
    assert outcomes == {"tagged.ipynb::Cell 0": "PASSED", "tagged.ipynb::Cell 1": "FAILED"}, run.stdout
