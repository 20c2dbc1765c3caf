"""Checks for the course's exercises: run them from an exercise notebook.

    from minigraph.checks import check, hint, solution

    check("1.1", softmax)   # ✓ passed — or what is wrong: the input, the expected and your value
    hint("1.1")             # more help than the one-line hint a failure shows
    solution("1.1")         # the reference code, once you have tried

Chapter authors: :mod:`minigraph.checks.framework` documents how to declare an exercise and its check.
"""

from .framework import CheckFailure, CheckResult, all_exercises, check, hint, solution

__all__ = ["check", "hint", "solution", "all_exercises", "CheckResult", "CheckFailure"]
