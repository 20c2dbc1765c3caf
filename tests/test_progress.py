"""The progress command: it runs exercise notebooks and tabulates, per exercise, passed / failed / timed out /
error / not attempted, says what it runs while it runs, and goes on past whatever goes wrong."""

import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from minigraph.progress import main

KERNELSPEC = {"name": "python3", "display_name": "Python 3"}
REGISTER = '''\
import os
from minigraph.checks import check
from minigraph.checks.framework import exercise, expect_equal

titles = ["solved", "wrong", "still a stub", "loops in its check", "syntax error", "loops in a cell",
          "after the loop", "never reached"]  # the table knows them from the checks that ran
for number, title in enumerate(titles, start=1):
    exercise(f"99.{number}", title, expects="add_one(x)", nudge="Add one.", hint="x + 1",
             time_limit=1 if number == 4 else 60)(lambda add_one: expect_equal(add_one(1), 2))
'''
LONG_MESSAGE = "word " * 80


def exercise_cells(number, *sources):
    return [new_markdown_cell(f"## Exercise 99.{number} — a heading"), *map(new_code_cell, sources)]


@pytest.fixture
def learner_notebook(tmp_path):
    """A chapter-99 notebook with one exercise in each state, and a junk line written to the check log."""
    cells = [
        new_code_cell(REGISTER),
        *exercise_cells(1, 'def add_one(x):\n    return x + 1', 'check("99.1", add_one)'),
        *exercise_cells(2, 'def add_two(x):\n    return x', 'check("99.2", add_two)'),
        *exercise_cells(3, 'def add_three(x):\n    raise NotImplementedError("Exercise 99.3")',
                        'check("99.3", add_three)', "add_three(1)"),
        *exercise_cells(4, 'def add_four(x):\n    while True:\n        pass', 'check("99.4", add_four)'),
        *exercise_cells(5, 'def add_five(x)\n    return x + 1', 'check("99.5", add_five)'),
        *exercise_cells(6, "while True:\n    pass"),
        *exercise_cells(7, 'check("99.7", lambda x: x + 1)',
                        'open(os.environ["MINIGRAPH_CHECK_LOG"], "a").write("half a line\\n")',
                        f'raise ValueError("{LONG_MESSAGE}")'),
        *exercise_cells(8, 'if False:\n    check("99.8", add_one)'),
    ]
    path = tmp_path / "99_progress.ipynb"
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), path)
    return path


def test_every_state_of_an_exercise_is_reported_and_the_run_goes_on(learner_notebook, capsys):
    before = learner_notebook.read_bytes()
    assert main(["--timeout", "5", str(learner_notebook)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[:9] == [
        learner_notebook.as_posix(),
        "  99.1   solved              passed",
        "  99.2   wrong               failed",
        "  99.3   still a stub        not attempted",
        "  99.4   loops in its check  timed out",
        "  99.5                       error",  # no title: its check never ran, and chapter 99 is not the course's
        "  99.6                       timed out",
        "  99.7   after the loop      passed",
        "  99.8                       not attempted",
    ]
    notes = lines[9:-3]
    assert notes[0] == ("  note: line 6 of the check log cannot be read: 'half a line'")
    assert notes[1] == ("  note: exercise 99.5: SyntaxError: expected ':' (line 1) (in the cell starting "
                        "'def add_five(x)')")
    assert notes[2].startswith("  note: exercise 99.5: NameError: name 'add_five' is not defined")
    assert notes[3] == ("  note: exercise 99.6: stopped after 5 s, the time limit of a cell (in the cell starting "
                        "'while True:')")
    assert notes[4].startswith("  note: exercise 99.7: ValueError: word word") and "…" in notes[4]
    assert len(notes[4]) < 300 and len(notes) == 5
    assert lines[-3:] == ["  2 of 8 passed, 1 failed, 2 timed out, 1 error, 2 not attempted", "",
                          "All chapters: 2 of 8 passed, 1 failed, 2 timed out, 1 error, 2 not attempted"]
    status = captured.err.splitlines()
    assert status[0] == f"running {learner_notebook.as_posix()}: setup"
    assert f"running {learner_notebook.as_posix()}: exercise 99.6" in status
    assert "Traceback" not in captured.err and "Kernel" not in captured.err and "WARNING" not in captured.err
    assert learner_notebook.read_bytes() == before, "progress must not modify the notebooks"
    assert sorted(learner_notebook.parent.iterdir()) == [learner_notebook]


def test_a_dead_kernel_and_an_unreadable_notebook_are_reported(tmp_path, capsys):
    dying = [new_markdown_cell("## Exercise 0.1"), new_code_cell("import os\nos.kill(os.getpid(), 9)"),
             new_code_cell("1 + 1")]
    nbformat.write(new_notebook(cells=dying, metadata={"kernelspec": KERNELSPEC}), tmp_path / "00_welcome.ipynb")
    (tmp_path / "01_numpy_logistic_regression.ipynb").write_text('{"cells": [\n<<<<<<< HEAD\n')
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "  0.1    the mean image of a digit  error\n" in out
    assert ("  note: exercise 0.1: the kernel died (out of memory?); the cells after it did not run (in the cell "
            "starting 'import os')") in out
    assert "  note: cannot read this notebook (NotJSONError: Notebook does not appear to be JSON" in out
    assert re.search(r"\n  1\.5 +softmax regression on MNIST +not attempted\n", out)
    assert out.endswith("All chapters: 0 of 6 passed, 0 failed, 1 error, 5 not attempted\n")


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


def test_without_paths_it_runs_the_courses_exercises_wherever_it_is_started(monkeypatch, tmp_path):
    """./course progress and python -m minigraph.progress, run from any folder, default to the course's
    exercises/ (not an exercises/ below the caller's folder)."""
    from pathlib import Path

    import minigraph.progress as progress

    seen = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(progress, "find_notebooks", lambda paths: seen.extend(paths) or [])
    assert main([]) == 1  # no notebooks, as find_notebooks is replaced
    assert seen == [str(Path(__file__).resolve().parents[1] / "exercises")]
