"""Fixtures shared by the tests of the chapters' checks."""

import pytest

from minigraph.checks import check


@pytest.fixture
def run_check(capsys):
    """``run_check(exercise, *args)``: the CheckResult, and the report it printed with its line breaks and
    indentation folded (reports wrap long lines between words)."""

    def run(*args, **kwargs):
        capsys.readouterr()
        result = check(*args, **kwargs)
        return result, " ".join(capsys.readouterr().out.split())

    return run
