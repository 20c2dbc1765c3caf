"""The progress command: it runs exercise notebooks and tabulates passed / failed / not attempted."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from minigraph.progress import main

KERNELSPEC = {"name": "python3", "display_name": "Python 3"}
REGISTER = '''\
import numpy as np
from minigraph.checks import check
from minigraph.checks.framework import exercise, expect_equal

for number, title in [(1, "solved"), (2, "wrong"), (3, "still a stub"), (4, "never reached")]:
    exercise(f"99.{number}", title, hint="Add one.")(lambda add_one: expect_equal(add_one(1), 2))
'''


@pytest.fixture
def learner_notebook(tmp_path):
    """A chapter-99 exercise notebook: 99.1 solved, 99.2 wrong, 99.3 a stub, 99.4's check never runs."""
    cells = [
        new_code_cell(REGISTER),
        new_code_cell('def add_one(x):\n    return x + 1\ncheck("99.1", add_one)'),
        new_code_cell('def add_one(x):\n    return x\ncheck("99.2", add_one)'),
        new_code_cell('def add_one(x):\n    raise NotImplementedError("Exercise 99.3")\ncheck("99.3", add_one)'),
        new_code_cell("add_one(1)"),
        new_code_cell("undefined_name"),
        new_code_cell('if False:\n    check("99.4", add_one)'),
    ]
    notebook = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    path = tmp_path / "99_progress.ipynb"
    nbformat.write(notebook, path)
    return path


def test_the_table_shows_each_exercise_and_the_totals(learner_notebook, capsys):
    before = learner_notebook.read_bytes()
    assert main([str(tmp_folder := learner_notebook.parent)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        learner_notebook.as_posix(),
        "  99.1   solved        passed",
        "  99.2   wrong         failed",
        "  99.3   still a stub  not attempted",
        "  99.4                 not attempted",
        "  note: cell 5 raised NameError: name 'undefined_name' is not defined",
        "  1 of 4 passed, 1 failed, 2 not attempted",
        "",
        "All chapters: 1 of 4 passed, 1 failed, 2 not attempted",
    ]
    assert learner_notebook.read_bytes() == before, "progress must not modify the notebooks"
    assert sorted(tmp_folder.iterdir()) == [learner_notebook]


def test_chapter_exercises_never_checked_are_listed_as_not_attempted(tmp_path, capsys):
    notebook = new_notebook(cells=[new_code_cell("1 + 1")], metadata={"kernelspec": KERNELSPEC})
    nbformat.write(notebook, tmp_path / "00_welcome.ipynb")
    assert main([str(tmp_path / "00_welcome.ipynb")]) == 0
    assert "  0.1    the mean image of a digit  not attempted\n" in capsys.readouterr().out


def test_a_folder_without_notebooks_is_explained(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: no notebooks (.ipynb) in {tmp_path}\n"
    assert main([str(tmp_path / "absent")]) == 1
    assert "absent is neither a notebook (.ipynb) nor a folder" in capsys.readouterr().err
