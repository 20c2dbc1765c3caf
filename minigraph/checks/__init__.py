"""Checks for the course's exercises: run them from an exercise notebook.

    from minigraph.checks import check, hint, solution

    check("1.1", stable_softmax)   # ✓ passed — or the input, the expected and your value, and a hint
    hint("1.1")                    # a nudge
    solution("1.1")                # the reference solution, once you have tried

Chapter authors: see :mod:`minigraph.checks.framework` for how to register a check.
"""

from .framework import CheckFailure, CheckResult, all_exercises, check, hint, solution

__all__ = ["check", "hint", "solution", "all_exercises", "CheckResult", "CheckFailure"]
