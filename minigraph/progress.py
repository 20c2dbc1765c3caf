"""Run your exercise notebooks and see which exercises pass.

    python -m minigraph.progress                       # every notebook in exercises/
    python -m minigraph.progress exercises/01_numpy_logistic_regression.ipynb
    python -m minigraph.progress --timeout 300         # seconds a cell may run (default 120)

Each notebook runs top to bottom in a fresh ``python3`` kernel started in the notebook's folder, going on
past cells that fail; the notebooks themselves are not modified. While it runs, the command says which
notebook and exercise it is at. A cell that runs longer than the time limit is interrupted and the run goes
on with the next cell. Every ``check(...)`` the kernel runs appends its outcome to a log
(``MINIGRAPH_CHECK_LOG``); the table shows, per exercise, one of

- passed, failed: what its check said last;
- timed out: its check, or a cell of the exercise, ran out of time (a loop that never ends?);
- error: a cell of the exercise raised (a syntax error, a name not defined, the kernel died);
- not attempted: the stub is still there, or its check never ran.

Notes under a notebook name the exercise and the first line of the cell of each error. A notebook that
cannot be read, or a line of the log that cannot be, is reported there too, and the run goes on.
"""

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .checks.framework import FAILED, LOG_VARIABLE, PASSED, TIMED_OUT, all_exercises
from .checks.markers import exercise_order, stubbed_exercise

NOT_ATTEMPTED, ERROR = "not attempted", "error"
CELL_TIME_LIMIT = 120  # seconds
NOTE_LENGTH = 160  # characters of a note shown in the table
SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_TIMEOUT_NAME = "TimeLimit"  # the error of the reply nbclient makes up for a cell stopped by the time limit
_EXERCISE_MENTION = re.compile(
    r"""check\(\s*["'](\d+\.\d+)["']|NotImplementedError\(\s*["']Exercise (\d+\.\d+)["']\)"""
    r"""|BEGIN SOLUTION (\d+\.\d+)|^#+\s*Exercise (\d+\.\d+)""", re.MULTILINE)
_CELL_FILE = re.compile(r"\(\d+\.py, (line \d+)\)")
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d+\.\d+)["']""")
_QUIET = logging.getLogger("minigraph.progress.nbclient")  # nbclient's own messages: the table says it all
_QUIET.disabled = True


def kernel_environment():
    """The environment for a notebook kernel, as the course's tests run them: this process's, without
    MPLBACKEND (it would suppress figures), with one BLAS thread (BLAS threads competing for two cores make
    small matrix products many times slower, and results then match the committed outputs)."""
    environment = {name: value for name, value in os.environ.items() if name != "MPLBACKEND"}
    return {**environment, **SINGLE_THREADED_BLAS}


@dataclass
class NotebookRun:
    """What running one notebook showed: the last status logged per exercise, and what went wrong where."""

    path: Path
    statuses: dict = field(default_factory=dict)  # exercise id -> the last status its check logged
    titles: dict = field(default_factory=dict)  # exercise id -> title
    cell_problems: dict = field(default_factory=dict)  # exercise id -> "error" or "timed out", from its cells
    notes: list = field(default_factory=list)  # what went wrong, in words
    checked_in_source: list = field(default_factory=list)  # ids of the check("N.M", ...) calls in its code

    def exercises(self):
        """Every exercise of this notebook, in order: its chapter's, the ones it checks, the ones it logged."""
        chapter = self.path.name[:2]
        known = dict(all_exercises())
        ids = set(self.statuses) | set(self.checked_in_source) | set(self.cell_problems)
        if chapter.isdigit():
            ids |= {key for key in known if key.split(".")[0] == str(int(chapter))}
        titles = known | self.titles
        return [(key, titles.get(key, "")) for key in sorted(ids, key=exercise_order)]

    def outcome(self, exercise_id):
        """The check's verdict when it gave one; else what its cells showed; else not attempted."""
        status = self.statuses.get(exercise_id)
        if status in (PASSED, FAILED, TIMED_OUT):
            return status
        return self.cell_problems.get(exercise_id, NOT_ATTEMPTED)


def run_notebook(path, timeout=CELL_TIME_LIMIT, on_exercise=None):
    """Run the notebook at ``path`` in a fresh kernel, without saving it; return a :class:`NotebookRun`.

    ``on_exercise(exercise_id, cell_number, cell_count)`` is called as each code cell starts
    (``exercise_id`` None before the first exercise).
    """
    import nbformat  # here, not at the top: importing nbformat and nbclient takes seconds, and the course's
    from nbclient import NotebookClient  # setup imports this module for kernel_environment
    from nbclient.exceptions import DeadKernelError

    path = Path(path)
    run = NotebookRun(path)
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # half saved, a merge conflict, not a notebook at all
        run.notes.append(f"cannot read this notebook ({_shortened(_error_text(error))}); it was not run")
        return run
    exercise_of = _exercise_of_each_cell(notebook)
    run.checked_in_source = [key for cell in notebook.cells if cell.cell_type == "code"
                             for key in _CHECK_CALL.findall(cell.source)]
    code_cells = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    started, replies = [], {}  # the indices of the cells started; cell index -> the content of its reply

    def cell_started(cell, cell_index):
        started.append(cell_index)
        if on_exercise and cell.cell_type == "code":
            on_exercise(exercise_of[cell_index], code_cells.index(cell_index) + 1, len(code_cells))

    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "checks.jsonl"
        client = NotebookClient(
            notebook, kernel_name="python3", timeout=timeout, interrupt_on_timeout=True,
            error_on_timeout={"ename": _TIMEOUT_NAME, "evalue": f"stopped after {timeout} s"},
            allow_errors=True, record_timing=False, log=_QUIET,
            resources={"metadata": {"path": str(path.parent.resolve())}},
            on_cell_start=cell_started,
            on_cell_executed=lambda cell, cell_index, execute_reply: replies.update({cell_index: execute_reply["content"]}),
        )
        try:
            client.execute(env={**kernel_environment(), LOG_VARIABLE: str(log_path)}, stderr=subprocess.DEVNULL)
        except DeadKernelError:
            _note_cell_problem(run, notebook, exercise_of, started[-1], ERROR,
                               "the kernel died (out of memory?); the cells after it did not run")
        _read_log(log_path, run)
    for index, reply in sorted(replies.items()):
        if reply.get("status") == "error" and not is_stub_error(reply.get("ename"), reply.get("evalue", "")):
            timed_out = reply["ename"] == _TIMEOUT_NAME
            text = f"stopped after {timeout} s, the time limit of a cell" if timed_out else _error_text_of(reply)
            _note_cell_problem(run, notebook, exercise_of, index, TIMED_OUT if timed_out else ERROR, text)
    return run


def _exercise_of_each_cell(notebook):
    """For each cell, the exercise it belongs to: the last one mentioned at or before it (a heading
    "Exercise N.M", a check, a stub or a solution marker), None before the first."""
    current, owners = None, []
    for cell in notebook.cells:
        mentions = [next(filter(None, match.groups())) for match in _EXERCISE_MENTION.finditer(cell.source)]
        current = mentions[0] if mentions else current
        owners.append(current)
    return owners


def _read_log(log_path, run):
    if not log_path.exists():
        return
    for number, line in enumerate(log_path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        try:
            entry = json.loads(line)
            exercise_id, status, title = entry["exercise"], entry["status"], entry.get("title", "")
        except (ValueError, KeyError, TypeError):
            run.notes.append(f"line {number} of the check log cannot be read: {_shortened(line)!r}")
            continue
        run.statuses[exercise_id] = status
        run.titles[exercise_id] = title


def _note_cell_problem(run, notebook, exercise_of, index, problem, text):
    """Record ``problem`` ("error" or "timed out") for the exercise of cell ``index``, and a note naming the
    exercise and the first line of the cell."""
    owner = exercise_of[index]
    where = f"exercise {owner}" if owner else "before the first exercise"
    first_line = _shortened(notebook.cells[index].source.strip().split("\n")[0], 60)
    run.notes.append(f"{where}: {_shortened(text)} (in the cell starting {first_line!r})")
    if owner:
        run.cell_problems.setdefault(owner, problem)  # the first problem, which may have caused the others


def _error_text_of(reply):
    """``SyntaxError: expected ':' (line 1)``: IPython's name for the cell's file left out."""
    name, message = reply.get("ename", "an error"), _CELL_FILE.sub(r"(\1)", reply.get("evalue", ""))
    return f"{name}: {message}" if message else name


def _error_text(error):
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _shortened(text, length=NOTE_LENGTH):
    text = " ".join(str(text).split())
    return text if len(text) <= length else text[:length - 1].rstrip() + "…"


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
    """The progress table: one line per exercise, notes, a total per notebook (one chapter each) and overall."""
    outcomes = (PASSED, FAILED, TIMED_OUT, ERROR, NOT_ATTEMPTED)
    lines, overall = [], dict.fromkeys(outcomes, 0)
    for run in runs:
        lines.append(shown_path(run.path))
        exercises = run.exercises()
        width = max((len(title) for _, title in exercises), default=0)
        counts = dict.fromkeys(outcomes, 0)
        for exercise_id, title in exercises:
            outcome = run.outcome(exercise_id)
            counts[outcome] += 1
            lines.append(f"  {exercise_id:<6} {title:<{width}}  {outcome}")
        lines += [f"  note: {note}" for note in run.notes]
        lines.append(f"  {_totals(counts)}\n")
        overall = {key: overall[key] + counts[key] for key in overall}
    lines.append(f"All chapters: {_totals(overall)}")
    return "\n".join(lines)


def shown_path(path):
    """``path`` relative to the working folder when it lies inside it, else as it is."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _totals(counts):
    total = sum(counts.values())
    parts = [f"{counts[PASSED]} of {total} passed", f"{counts[FAILED]} failed"]
    parts += [f"{counts[key]} {key}" for key in (TIMED_OUT, ERROR) if counts[key]]
    return ", ".join(parts + [f"{counts[NOT_ATTEMPTED]} not attempted"])


class _Status:
    """Says on stderr what is running: one line rewritten in place on a terminal, a line per exercise else."""

    def __init__(self):
        self.stream = sys.stderr
        self.on_terminal, self.shown = self.stream.isatty(), None

    def notebook(self, path):
        self.path = shown_path(path)
        self.exercise(None, 0, 0)

    def exercise(self, exercise_id, cell_number, cell_count):
        where = f"exercise {exercise_id}" if exercise_id else "setup"
        if self.on_terminal:
            cells = f", cell {cell_number} of {cell_count}" if cell_count else ""
            self.stream.write(f"\r\033[Krunning {self.path}: {where}{cells}")
        elif (self.path, where) != self.shown:
            self.stream.write(f"running {self.path}: {where}\n")
        self.shown = (self.path, where)
        self.stream.flush()

    def done(self):
        if self.on_terminal:
            self.stream.write("\r\033[K")
            self.stream.flush()


COURSE_EXERCISES = Path(__file__).resolve().parents[1] / "exercises"  # beside the package, as cloned


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minigraph.progress", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", default=[str(COURSE_EXERCISES)],
                        help="notebooks or folders (default: the course's exercises/)")
    parser.add_argument("--timeout", type=int, default=CELL_TIME_LIMIT, metavar="SECONDS",
                        help="seconds a cell may run before it is interrupted (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.timeout < 1:
        parser.error("--timeout must be at least 1 second")
    try:
        notebooks = find_notebooks(args.paths)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not notebooks:
        print(f"error: no notebooks (.ipynb) in {', '.join(args.paths)}", file=sys.stderr)
        return 1
    status, runs = _Status(), []
    for path in notebooks:
        status.notebook(path)
        runs.append(run_notebook(path, timeout=args.timeout, on_exercise=status.exercise))
    status.done()
    print(format_table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
