"""The exercise pipeline: generating exercises/ from solutions/, its check mode, and the shipped notebooks."""

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from minigraph.checks import all_exercises, framework
from minigraph.checks.markers import MarkerError, solution_blocks
from minigraph.progress import run_notebook

REPOSITORY = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "solutions" / "00_welcome.ipynb"
STUB = '    # TODO: your code\n    raise NotImplementedError("Exercise 0.1")'

_spec = importlib.util.spec_from_file_location("exercises_tool", REPOSITORY / "tools" / "exercises.py")
exercises_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exercises_tool)


@pytest.fixture
def course(tmp_path):
    """A solutions folder holding the fixture notebook, and an empty exercises folder beside it."""
    (tmp_path / "solutions").mkdir()
    shutil.copy(FIXTURE, tmp_path / "solutions")
    return tmp_path


def generate(course, *options):
    folders = ["--solutions", str(course / "solutions"), "--exercises", str(course / "exercises")]
    return exercises_tool.main([*folders, *options])


def write_solution(course, name, cells):
    """Save a solution notebook ``name`` made of ``cells``."""
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    nbformat.write(notebook, course / "solutions" / name)


def test_generation_replaces_blocks_and_clears_outputs(course):
    assert generate(course) == 0
    solution = nbformat.read(FIXTURE, as_version=4)
    generated = nbformat.read(course / "exercises" / "00_welcome.ipynb", as_version=4)
    assert [cell.id for cell in generated.cells] == [cell.id for cell in solution.cells]
    assert [cell.metadata for cell in generated.cells] == [cell.metadata for cell in solution.cells]
    assert generated.cells[4].metadata.tags == ["check"]
    assert generated.metadata.kernelspec == solution.metadata.kernelspec
    assert generated.metadata.language_info == {"name": "python"}  # no Python version a run recorded
    for ours, theirs in zip(generated.cells, solution.cells):
        if ours.cell_type == "markdown":
            assert ours == theirs
        else:
            assert ours.outputs == [] and ours.execution_count is None
    assert solution.cells[4].outputs, "the fixture should carry outputs, so that clearing them is tested"
    assert generated.cells[3].source == (
        'def mean_digit(images, labels, digit):\n    """The average of the rows of `images` whose label is `digit`."""\n'
        + STUB
    )
    assert generated.cells[4].source == solution.cells[4].source == 'check("0.1", mean_digit)'


def test_generation_is_byte_stable_and_then_up_to_date(course, capsys):
    generate(course)
    first = (course / "exercises" / "00_welcome.ipynb").read_bytes()
    assert generate(course) == 0
    assert (course / "exercises" / "00_welcome.ipynb").read_bytes() == first
    assert first.endswith(b"}\n") and json.loads(first)["nbformat_minor"] == 5
    assert generate(course, "--check") == 0
    assert capsys.readouterr().out.endswith("1 exercise notebooks are up to date.\n")


def test_indentation_several_blocks_and_solution_only_cells(course):
    method = (
        "class Momentum:\n"
        "    def update(self, w, g):\n"
        "        # BEGIN SOLUTION 3.2\n"
        "        self.v = 0.9 * self.v + g\n"
        "        return w - 0.1 * self.v\n"
        "        # END SOLUTION 3.2\n"
        "\n"
        "def order(graph):\n"
        "\t# BEGIN SOLUTION 3.1\n"
        "\treturn sorted(graph)\n"
        "\t# END SOLUTION"
    )
    shown_off = new_code_cell("Momentum().update(1.0, 2.0)", metadata={"tags": ["solution-only"]})
    write_solution(course, "03_autodiff.ipynb", [new_markdown_cell("# Three"), new_code_cell(method), shown_off])
    notebook = nbformat.read(course / "solutions" / "03_autodiff.ipynb", as_version=4)
    notebook.metadata["widgets"] = {"state": {}}
    nbformat.write(notebook, course / "solutions" / "03_autodiff.ipynb")
    assert generate(course) == 0
    generated = nbformat.read(course / "exercises" / "03_autodiff.ipynb", as_version=4)
    assert [cell.cell_type for cell in generated.cells] == ["markdown", "code"]
    assert "widgets" not in generated.metadata
    assert generated.cells[1].source == (
        "class Momentum:\n"
        "    def update(self, w, g):\n"
        "        # TODO: your code\n"
        '        raise NotImplementedError("Exercise 3.2")\n'
        "\n"
        "def order(graph):\n"
        "\t# TODO: your code\n"
        '\traise NotImplementedError("Exercise 3.1")'
    )


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f():\n    # BEGIN SOLUTION 1.1\n    # BEGIN SOLUTION 1.2\n    pass\n    # END SOLUTION",
         "line 3: BEGIN SOLUTION 1.2 is nested inside the block of exercise 1.1 opened at line 2"),
        ("def f():\n    pass\n    # END SOLUTION", "line 3: END SOLUTION without a BEGIN SOLUTION before it"),
        ("def f():\n    # BEGIN SOLUTION 1.1\n    pass", "line 2: BEGIN SOLUTION 1.1 has no # END SOLUTION after it"),
        ("def f():\n    # BEGIN SOLUTION\n    pass\n    # END SOLUTION",
         "line 2: BEGIN SOLUTION needs an exercise id like 1.1, found 'nothing'"),
        ("def f():\n    # BEGIN SOLUTION one\n    pass\n    # END SOLUTION",
         "line 2: BEGIN SOLUTION needs an exercise id like 1.1, found 'one'"),
        ("# BEGIN SOLUTION 1.1\nx = 1\n# END SOLUTION", "line 1: the block of exercise 1.1 is at the top level"),
        ("def f():\n    # BEGIN SOLUTION 1.1\n    pass\n    # END SOLUTION 1.2",
         "line 4: END SOLUTION 1.2 closes the block of exercise 1.1"),
        ("def f():\n    # BEGIN SOLUTION 1.1\n\n    # END SOLUTION", "line 2: the block of exercise 1.1 is empty"),
    ],
)
def test_bad_markers_name_the_notebook_cell_and_line(course, capsys, source, message):
    with pytest.raises(MarkerError, match=message):
        solution_blocks(source)
    write_solution(course, "01_numpy.ipynb", [new_markdown_cell("# One"), new_code_cell(source)])
    assert generate(course) == 1
    assert f"01_numpy.ipynb: cell 1, {message}" in capsys.readouterr().err
    assert not (course / "exercises").exists()


def test_a_block_of_another_chapter_is_refused(course, capsys):
    block = "def f():\n    # BEGIN SOLUTION 1.1\n    pass\n    # END SOLUTION"
    write_solution(course, "02_graphs.ipynb", [new_code_cell(block)])
    assert generate(course, "--check") == 1
    assert "02_graphs.ipynb: cell 0, line 2: exercise 1.1 is not an exercise of chapter 2" in capsys.readouterr().err


def test_a_cell_without_id_is_refused(course, capsys):
    notebook = json.loads(FIXTURE.read_text())
    del notebook["cells"][3]["id"]
    notebook["nbformat_minor"] = 4
    (course / "solutions" / "00_welcome.ipynb").write_text(json.dumps(notebook))
    assert generate(course) == 1
    assert "00_welcome.ipynb: cell 3 has no id" in capsys.readouterr().err


def test_check_mode_names_stale_missing_and_extra_notebooks_without_writing(course, capsys):
    assert generate(course, "--check") == 1
    assert "missing: " in capsys.readouterr().out and not (course / "exercises").exists()
    generate(course)
    notebook = nbformat.read(course / "solutions" / "00_welcome.ipynb", as_version=4)
    notebook.cells[3].source = notebook.cells[3].source.replace("The average", "The mean")
    nbformat.write(notebook, course / "solutions" / "00_welcome.ipynb")
    (course / "exercises" / "07_parallel.ipynb").write_text("{}")
    before = (course / "exercises" / "00_welcome.ipynb").read_bytes()
    capsys.readouterr()
    assert generate(course, "--check") == 1
    out = capsys.readouterr().out
    assert "stale: " in out and "00_welcome.ipynb differs from what its solution notebook generates" in out
    assert "extra: " in out and "07_parallel.ipynb has no solution notebook" in out
    assert (course / "exercises" / "00_welcome.ipynb").read_bytes() == before
    assert generate(course) == 0
    assert not (course / "exercises" / "07_parallel.ipynb").exists()
    assert "The mean" in (course / "exercises" / "00_welcome.ipynb").read_text()


def test_the_repository_exercises_are_up_to_date():
    """Fails when someone edits solutions/ (or exercises/) without regenerating exercises/."""
    result = subprocess.run(
        [sys.executable, str(REPOSITORY / "tools" / "exercises.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def solution_notebooks():
    return sorted((REPOSITORY / "solutions").glob("[0-9][0-9]_*.ipynb"))


def test_every_solution_block_has_a_check_and_every_check_a_block():
    registered = dict(all_exercises())
    for path in solution_notebooks():
        notebook = nbformat.read(path, as_version=4)
        solved = {
            block.exercise
            for cell in notebook.cells
            if cell.cell_type == "code"
            for block in solution_blocks(cell.source)
        }
        chapter = str(int(path.name[:2]))
        assert solved - set(registered) == set(), f"{path.name}: exercises without a registered check"
        unsolved = {key for key in registered if key.split(".")[0] == chapter} - solved
        assert unsolved == set(), f"{path.name}: registered exercises with no solution block"


def shipped_exercise_notebooks():
    notebooks = sorted((REPOSITORY / "exercises").glob("*.ipynb"))
    if not notebooks:
        return [pytest.param(None, marks=pytest.mark.skip(reason="exercises/ holds no notebooks yet"))]
    return [pytest.param(path, id=path.name) for path in notebooks]


def assert_runs_as_shipped(path):
    """Every cell runs without error and every check the notebook holds says "not implemented yet"."""
    run = run_notebook(path)
    assert run.notes == [], f"{path.name}: {run.notes}"
    assert run.statuses, f"{path.name} runs no check"
    assert set(run.checked_in_source) <= set(run.statuses), f"{path.name}: checks never reached"
    assert set(run.statuses.values()) == {"not implemented"}, f"{path.name}: {run.statuses}"


@pytest.mark.parametrize("path", shipped_exercise_notebooks())
def test_a_shipped_exercise_notebook_runs_and_every_check_is_not_implemented_yet(path):
    assert_runs_as_shipped(path)


def test_the_fixture_exercise_notebook_runs_as_shipped_and_its_solution_passes(course):
    generate(course)
    assert_runs_as_shipped(course / "exercises" / "00_welcome.ipynb")
    assert run_notebook(course / "solutions" / "00_welcome.ipynb").statuses == {"0.1": "passed"}
    with pytest.raises(AssertionError, match="0.1.: .passed"):
        assert_runs_as_shipped(course / "solutions" / "00_welcome.ipynb")


def solution_definitions():
    """For each exercise, the definitions its solution blocks sit in: ``{id: {(class or None, def name, args)}}``,
    where args is the def's parameter list as source text."""
    found = {}
    for path in solution_notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            blocks = solution_blocks(cell.source)
            tree = ast.parse(cell.source)
            for owner in [None, *[node for node in tree.body if isinstance(node, ast.ClassDef)]]:
                for node in (owner.body if owner else tree.body):
                    if not isinstance(node, ast.FunctionDef):
                        continue
                    for block in blocks:
                        if node.lineno <= block.begin + 1 <= node.end_lineno:
                            found.setdefault(block.exercise, set()).add(
                                (owner.name if owner else None, node.name, ast.unparse(node.args)))
    return found


def test_every_exercise_declares_the_stub_its_notebook_gives():
    """expects= of each check names the function (or class and methods) the exercise notebook has the learner
    complete, with the same parameters: the check calls the learner's code the way the notebook declares it."""
    all_exercises()
    for exercise_id, definitions in solution_definitions().items():
        stubs = framework._REGISTRY[exercise_id].stubs
        declared = set()
        for stub in stubs:
            tree = ast.parse(stub.source).body[0]
            if isinstance(tree, ast.ClassDef):
                declared |= {(tree.name, node.name, ast.unparse(node.args)) for node in tree.body
                             if isinstance(node, ast.FunctionDef)}
            else:
                declared.add((None, tree.name, ast.unparse(tree.args)))
        assert definitions <= declared, f"exercise {exercise_id}: the notebook has {definitions}, expects= {declared}"


def test_a_failure_prints_a_nudge_not_the_solution():
    """The nudge a failure prints, and the hint hint() prints, hold no line of the reference solution."""
    all_exercises()
    for exercise_id, _ in all_exercises():
        exercise = framework._REGISTRY[exercise_id]
        code = framework._solution_from_notebook(exercise_id)
        lines = {line.strip() for line in code.splitlines() if len(line.strip()) >= 20 and not line.strip().startswith("#")}
        assert len(exercise.nudge) <= 200, f"{exercise_id}: a nudge is one sentence"
        for text, kind in ((exercise.nudge, "nudge"), (exercise.hint, "hint")):
            leaked = [line for line in lines if line in text]
            assert not leaked, f"{exercise_id}: the {kind} gives away solution code: {leaked}"
        assert len(exercise.hint) > len(exercise.nudge), f"{exercise_id}: hint() should say more than the nudge"
