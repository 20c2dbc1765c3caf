"""The code of a solution notebook, run for the tests of a chapter's checks."""

import linecache
from pathlib import Path

import nbformat

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"


def not_a_check(source):
    return "check(" not in source


def solution_namespace(name, runs=not_a_check):
    """The namespace of ``solutions/<name>`` after running the code cells whose source ``runs`` accepts (by
    default all but the checks), except those tagged ``solution-only``. Each cell is compiled under a file name
    of its own that linecache knows, as Jupyter does, so that a check can read the source of a function (7.4
    sends it to MPI ranks)."""
    namespace = {}
    for number, cell in enumerate(nbformat.read(SOLUTIONS / name, as_version=4).cells):
        if cell.cell_type != "code" or not runs(cell.source) or "solution-only" in cell.metadata.get("tags", []):
            continue
        filename = f"<solutions/{name} cell {number}>"
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(keepends=True), filename)
        exec(compile(cell.source, filename, "exec"), namespace)
    return namespace
