"""Re-execute course notebooks in place, so that their saved outputs are fresh.

    python tools/execute.py [--jobs N] [PATH ...]

Each PATH is a notebook or a folder of notebooks; the default is every notebook in
notebooks/ and solutions/. A notebook runs top to bottom in a fresh `python3` kernel
started in the notebook's own folder, as nbval runs it, so the saved outputs are the
references the regression tests compare against. A failing cell stops that notebook,
leaves its file untouched and makes the command exit with status 1.

The kernel sends printed text in chunks whose boundaries depend on timing; consecutive
chunks of one stream are joined before saving, so re-executing an unchanged notebook
changes only the cells whose output truly varies.
"""

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from minigraph.progress import find_notebooks, kernel_environment

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FOLDERS = ("notebooks", "solutions")
KERNEL_NAME = "python3"
CELL_TIMEOUT_SECONDS = 600


class NotebookFailed(Exception):
    """A cell of a notebook raised or timed out; the message names the notebook and the cell."""


def execute_notebook(path):
    """Run one notebook in place and return the seconds it took; raise NotebookFailed on an error."""
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    started = []  # indices of the cells started so far; the last one is running
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_SECONDS,
        record_timing=False,
        on_cell_start=lambda cell, cell_index: started.append(cell_index),
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    start = time.perf_counter()
    try:
        client.execute(env=kernel_environment())
    except (CellExecutionError, CellTimeoutError) as error:
        position = f"cell {started[-1] + 1} of {len(notebook.cells)}"  # counted as JupyterLab counts
        raise NotebookFailed(f"{path}: {position} failed, notebook not saved\n{error}") from None
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = join_streams(cell.outputs)
    nbformat.write(notebook, path)
    return time.perf_counter() - start


def join_streams(outputs):
    """``outputs`` with each run of consecutive stdout (or stderr) chunks joined into one output."""
    joined = []
    for output in outputs:
        previous = joined[-1] if joined else None
        if (output.output_type == "stream" and previous is not None and previous.output_type == "stream"
                and previous.name == output.name):
            previous.text += output.text
        else:
            joined.append(output)
    return joined


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="notebooks or folders (default: notebooks/ and solutions/)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks to run at the same time (default 1)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    try:
        notebooks = find_notebooks(args.paths or [REPO / folder for folder in DEFAULT_FOLDERS])
    except FileNotFoundError as error:
        raise SystemExit(f"error: {error}") from None
    if not notebooks:
        print("no notebooks to execute")
        return 0

    failures = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = {path: pool.submit(execute_notebook, path) for path in notebooks}
        for path, run in runs.items():
            try:
                print(f"executed {path} in {run.result():.1f} s", flush=True)
            except NotebookFailed as failure:
                print(f"FAILED {failure}", file=sys.stderr, flush=True)
                failures.append(path)

    if failures:
        print(f"{len(failures)} of {len(notebooks)} notebooks failed: "
              + ", ".join(map(str, failures)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
