"""Run your exercise notebooks and see which exercises pass.

    python -m minigraph.progress                       # every notebook in exercises/
    python -m minigraph.progress exercises/01_numpy_logistic_regression.ipynb

Each notebook runs top to bottom in a fresh ``python3`` kernel started in the notebook's folder, going on
past cells that fail; the notebooks themselves are not modified. Every ``check(...)`` the kernel runs
appends its outcome to a log (``MINIGRAPH_CHECK_LOG``); the table shows, per exercise, the last outcome:
passed, failed, or not attempted (still a stub, or never reached).
"""

import argparse
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from .checks.framework import FAILED, LOG_VARIABLE, PASSED, all_exercises
from .checks.markers import exercise_order, stubbed_exercise

NOT_ATTEMPTED = "not attempted"
SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d+\.\d+)["']""")


def kernel_environment():
    """The environment for a notebook kernel, as the course's tests run them: this process's, without
    MPLBACKEND (it would suppress figures), with one BLAS thread (BLAS threads competing for two cores make
    small matrix products many times slower, and results then match the committed outputs)."""
    environment = {name: value for name, value in os.environ.items() if name != "MPLBACKEND"}
    return {**environment, **SINGLE_THREADED_BLAS}


@dataclass
class NotebookRun:
    """What running one notebook showed: the last status logged per exercise, and the cells that failed."""

    path: Path
    statuses: dict = field(default_factory=dict)  # exercise id -> "passed", "failed" or "not implemented"
    titles: dict = field(default_factory=dict)  # exercise id -> title
    errors: list = field(default_factory=list)  # (cell index, exception name, message) of each failed cell
    interrupted: str = ""  # why the run stopped early, if it did
    checked_in_source: list = field(default_factory=list)  # ids of the check("N.M", ...) calls in its code

    def exercises(self):
        """Every exercise of this notebook, in order: its chapter's, the ones it checks, the ones it logged."""
        chapter = self.path.name[:2]
        known = dict(all_exercises())
        ids = set(self.statuses) | set(self.checked_in_source)
        if chapter.isdigit():
            ids |= {key for key in known if key.split(".")[0] == str(int(chapter))}
        titles = known | self.titles
        return [(key, titles.get(key, "")) for key in sorted(ids, key=exercise_order)]

    def outcome(self, exercise_id):
        status = self.statuses.get(exercise_id)
        return status if status in (PASSED, FAILED) else NOT_ATTEMPTED


def run_notebook(path, timeout=600):
    """Run the notebook at ``path`` in a fresh kernel, without saving it; return a :class:`NotebookRun`."""
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    run = NotebookRun(path)
    run.checked_in_source = [
        exercise_id
        for cell in notebook.cells
        if cell.cell_type == "code"
        for exercise_id in _CHECK_CALL.findall(cell.source)
    ]
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "checks.jsonl"
        environment = {**kernel_environment(), LOG_VARIABLE: str(log_path)}
        client = NotebookClient(
            notebook,
            kernel_name="python3",
            timeout=timeout,
            allow_errors=True,
            record_timing=False,
            resources={"metadata": {"path": str(path.parent.resolve())}},
        )
        try:
            client.execute(env=environment)
        except CellTimeoutError:
            run.interrupted = f"a cell ran longer than {timeout} s and was stopped; the cells after it did not run"
        except DeadKernelError:
            run.interrupted = "the kernel died; the cells after that did not run"
        if log_path.exists():
            for line in log_path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                run.statuses[entry["exercise"]] = entry["status"]
                run.titles[entry["exercise"]] = entry["title"]
    run.errors = [
        (index, output.ename, output.evalue)
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
    return run


def is_stub_error(name, message):
    """An exercise's own stub, reached outside a check: expected until the learner solves the exercise."""
    return name == "NotImplementedError" and stubbed_exercise(message) is not None


def find_notebooks(paths):
    """The notebooks named by ``paths``: notebooks, or folders whose ``*.ipynb`` are taken in order."""
    notebooks = []
    for path in map(Path, paths):
        if path.is_dir():
            notebooks += sorted(path.glob("*.ipynb"))
        elif path.suffix == ".ipynb" and path.is_file():
            notebooks.append(path)
        else:
            raise FileNotFoundError(f"{path} is neither a notebook (.ipynb) nor a folder")
    return notebooks


def format_table(runs):
    """The progress table: one line per exercise, a total per notebook (one chapter each) and overall."""
    lines, overall = [], {PASSED: 0, FAILED: 0, NOT_ATTEMPTED: 0}
    for run in runs:
        lines.append(run.path.as_posix())
        exercises = run.exercises()
        width = max((len(title) for _, title in exercises), default=0)
        counts = {PASSED: 0, FAILED: 0, NOT_ATTEMPTED: 0}
        for exercise_id, title in exercises:
            outcome = run.outcome(exercise_id)
            counts[outcome] += 1
            lines.append(f"  {exercise_id:<6} {title:<{width}}  {outcome}")
        lines += [f"  note: cell {i} raised {name}: {message}" for i, name, message in run.errors
                  if not is_stub_error(name, message)]
        lines += [f"  note: {run.interrupted}"] if run.interrupted else []
        lines.append(f"  {_totals(counts)}\n")
        overall = {key: overall[key] + counts[key] for key in overall}
    lines.append(f"All chapters: {_totals(overall)}")
    return "\n".join(lines)


def _totals(counts):
    total = sum(counts.values())
    return f"{counts[PASSED]} of {total} passed, {counts[FAILED]} failed, {counts[NOT_ATTEMPTED]} not attempted"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minigraph.progress", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", default=["exercises"], help="notebooks or folders (default: exercises)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may run (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        notebooks = find_notebooks(args.paths)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not notebooks:
        print(f"error: no notebooks (.ipynb) in {', '.join(args.paths)}", file=sys.stderr)
        return 1
    runs = []
    for path in notebooks:
        print(f"running {path.as_posix()} ...", file=sys.stderr, flush=True)
        runs.append(run_notebook(path, timeout=args.timeout))
    print(format_table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
