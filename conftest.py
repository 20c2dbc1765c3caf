"""Notebook regression tests: every pytest run checks notebooks with nbval.

This conftest sits at the repository root so that pytest loads it however it is started
(`pytest`, `pytest notebooks/01_numpy.ipynb`, or from another folder with explicit paths);
one in tests/ would only be loaded for runs that include tests/.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent
SANITIZE_FILE = REPO / "tests" / "nbval_sanitize.cfg"
NBVAL_FOLDERS = (REPO / "notebooks", REPO / "solutions")


def pytest_configure(config):
    option = config.option
    if not hasattr(option, "nbval"):  # nbval disabled, e.g. with `-p no:nbval`
        return
    if not option.nbval_lax:
        option.nbval = True
    if not option.nbval_kernel_name:
        option.nbval_current_env = True  # the notebooks' `python3` kernel is this environment
    if option.nbval_sanitize_with is None:
        option.nbval_sanitize_with = str(SANITIZE_FILE)
    # A notebook's cells share one kernel, so xdist must keep each file on one worker.
    if getattr(option, "dist", "no") == "load":
        option.dist = "loadfile"
    # nbval's kernels inherit this environment: make it the one tools/execute.py gives its kernels
    # (no MPLBACKEND, one BLAS thread), so notebooks are re-run exactly as their outputs were made.
    from minigraph.progress import kernel_environment

    os.environ.clear()
    os.environ.update(kernel_environment())


def pytest_ignore_collect(collection_path, config):
    """Found while collecting, only the course notebooks go to nbval: not exercises/ (unsolved
    stubs, run by their own test) nor notebooks that tests use as fixtures."""
    if collection_path.suffix == ".ipynb" and collection_path.parent not in NBVAL_FOLDERS:
        return True
    return None
