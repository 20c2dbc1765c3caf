"""Generate the exercise notebooks from the solution notebooks, their single source.

    python tools/exercises.py           # write exercises/NN_name.ipynb for every solutions/NN_name.ipynb
    python tools/exercises.py --check   # write nothing; exit 1 listing stale, missing or extra exercise notebooks

In a solution notebook, the solution of exercise N.M sits in a code cell between two marker lines, inside
a function body (the grammar is in ``minigraph/checks/markers.py``)::

    def stable_softmax(z):
        # BEGIN SOLUTION 1.1
        ...
        # END SOLUTION

The exercise notebook is the same notebook with each block replaced, at the marker's indentation, by::

        # TODO: your code
        raise NotImplementedError("Exercise 1.1")

with every output, execution count and execution timing cleared; cell ids, the rest of the cell metadata
and the markdown are kept. Cells tagged ``solution-only`` are left out (for instance a cell that shows off
the solved function: in the exercise notebook it would raise); of the notebook's metadata only the kernel
is kept. Generating also removes exercise notebooks whose solution notebook is gone. The output is nbformat's own JSON, so
generating twice gives the same bytes.
"""

import argparse
import sys
from pathlib import Path

import nbformat

from minigraph.checks.markers import MarkerError, solution_blocks, stub_message

REPOSITORY = Path(__file__).resolve().parents[1]
NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
SOLUTION_ONLY_TAG = "solution-only"


class ExerciseSourceError(ValueError):
    """A solution notebook that cannot be turned into an exercise notebook."""


def stub(indent, exercise_id):
    """The lines that stand in for the solution of ``exercise_id``."""
    return [f"{indent}# TODO: your code", f'{indent}raise NotImplementedError("{stub_message(exercise_id)}")']


def exercise_source(source, chapter, where):
    """A cell's source with every solution block replaced by its stub; ``where`` names the cell in errors."""
    try:
        blocks = solution_blocks(source)
    except MarkerError as error:
        raise ExerciseSourceError(f"{where}, {error}") from None
    lines = source.split("\n")
    for block in reversed(blocks):
        if int(block.exercise.split(".")[0]) != chapter:
            raise ExerciseSourceError(
                f"{where}, line {block.begin + 1}: exercise {block.exercise} is not an exercise of chapter "
                f"{chapter}; its number must start with {chapter}."
            )
        lines[block.begin : block.end + 1] = stub(block.indent, block.exercise)
    return "\n".join(lines)


def exercise_notebook(solution_path):
    """The text of the exercise notebook generated from ``solution_path``."""
    notebook = nbformat.read(solution_path, as_version=4)
    chapter = int(solution_path.name[:2])
    cells = []
    for index, cell in enumerate(notebook.cells):
        where = f"{solution_path}: cell {index}"
        if "id" not in cell:
            raise ExerciseSourceError(
                f"{where} has no id; exercise cells keep the ids of their solution cells, so save the "
                "notebook with JupyterLab 3 or later (nbformat 4.5) to give every cell one."
            )
        if SOLUTION_ONLY_TAG in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = exercise_source(cell.source, chapter, where)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        cells.append(cell)
    notebook.cells = cells
    # Of the notebook's metadata only the kernel is kept: what a run recorded (the Python version, saved
    # widget state) would make the exercises stale whenever a solution is re-executed elsewhere.
    notebook.metadata = {"kernelspec": notebook.metadata.get("kernelspec", {}), "language_info": {"name": "python"}}
    return nbformat.writes(notebook) + "\n"


def planned_exercises(solutions_dir, exercises_dir):
    """Every exercise notebook and the text it should have; None for one that should not exist."""
    solutions = sorted(solutions_dir.glob(NOTEBOOK_PATTERN))
    plan = {exercises_dir / path.name: exercise_notebook(path) for path in solutions}
    for path in sorted(exercises_dir.glob(NOTEBOOK_PATTERN)):
        plan.setdefault(path, None)
    return plan


def differences(plan):
    """The exercise notebooks that differ from ``plan``: ``(kind, path, text)`` with kind stale, missing or extra."""
    found = []
    for path, text in plan.items():
        if text is None:
            found.append(("extra", path, text))
        elif not path.exists():
            found.append(("missing", path, text))
        elif path.read_text(encoding="utf-8") != text:
            found.append(("stale", path, text))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 unless exercises are up to date")
    parser.add_argument("--solutions", type=Path, default=REPOSITORY / "solutions", help="default: %(default)s")
    parser.add_argument("--exercises", type=Path, default=REPOSITORY / "exercises", help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        plan = planned_exercises(args.solutions, args.exercises)
    except ExerciseSourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    found = differences(plan)
    if args.check:
        reasons = {
            "stale": "differs from what its solution notebook generates",
            "missing": "does not exist",
            "extra": "has no solution notebook",
        }
        for kind, path, _ in found:
            print(f"{kind}: {_shown(path)} {reasons[kind]}")
        if found:
            print("Run python tools/exercises.py to regenerate the exercise notebooks.")
            return 1
        print(f"{len(plan)} exercise notebooks are up to date.")
        return 0
    verbs = {"stale": "updated", "missing": "created", "extra": "removed"}
    for kind, path, text in found:
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        print(f"{verbs[kind]}: {_shown(path)}")
    print(f"{len(plan) - sum(kind == 'extra' for kind, _, _ in found)} exercise notebooks up to date.")
    return 0


def _shown(path):
    """``path`` relative to the working folder when it lies inside it."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
