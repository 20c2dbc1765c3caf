"""The solution markers of the course's notebooks, and the blocks they delimit.

In a code cell of ``solutions/NN_name.ipynb`` the solution of an exercise sits between two marker lines,
inside a function or method body::

    def stable_softmax(z):
        # BEGIN SOLUTION 1.1
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
        # END SOLUTION

``tools/exercises.py`` replaces each block by a stub to build the exercise notebook, and
``minigraph.checks.solution`` shows a block to the learner. Both read the blocks with
:func:`solution_blocks`, so the grammar lives here only.
"""

import re
import textwrap
from dataclasses import dataclass

EXERCISE_ID = re.compile(r"\d+\.\d+")
_STUB_MESSAGE = re.compile(r"Exercise (\d+\.\d+)")
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b(?P<rest>.*)$")
_END = re.compile(r"^(?P<indent>[ \t]*)#\s*END SOLUTION\b(?P<rest>.*)$")


def exercise_order(exercise_id):
    """Sort key of an id: "1.2" before "1.10"."""
    return tuple(int(part) for part in exercise_id.split("."))


def stub_message(exercise_id):
    """The message of the ``NotImplementedError`` raised by the stub of ``exercise_id``."""
    return f"Exercise {exercise_id}"


def stubbed_exercise(message):
    """The exercise whose stub raised an error with ``message``, or None."""
    match = _STUB_MESSAGE.fullmatch(message)
    return match[1] if match else None


class MarkerError(ValueError):
    """A solution marker that is malformed, unmatched or nested; ``line`` is 1-based within the cell."""

    def __init__(self, line, message):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class SolutionBlock:
    """One marked block: lines ``begin`` to ``end`` (0-based, the two markers included)."""

    exercise: str
    indent: str
    begin: int
    end: int
    code: str  # the lines between the markers, dedented


def solution_blocks(source):
    """The solution blocks of one cell's source, in order; raises :class:`MarkerError` on a bad marker."""
    lines = source.split("\n")
    blocks = []
    opened = None  # (exercise id, indent, line index) of the BEGIN marker awaiting its END
    for index, line in enumerate(lines):
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            exercise = begin["rest"].strip()
            if opened:
                raise MarkerError(
                    index + 1,
                    f"BEGIN SOLUTION {exercise} is nested inside the block of exercise {opened[0]} "
                    f"opened at line {opened[2] + 1}; close that one with # END SOLUTION first",
                )
            if not EXERCISE_ID.fullmatch(exercise):
                raise MarkerError(
                    index + 1, f"BEGIN SOLUTION needs an exercise id like 1.1, found {exercise or 'nothing'!r}"
                )
            if not begin["indent"]:
                raise MarkerError(
                    index + 1,
                    f"the block of exercise {exercise} is at the top level of the cell; put it inside a "
                    "function body, so that its stub raises only when the learner's function is called",
                )
            opened = (exercise, begin["indent"], index)
        elif end:
            if not opened:
                raise MarkerError(index + 1, "END SOLUTION without a BEGIN SOLUTION before it")
            exercise, indent, start = opened
            closing_id = end["rest"].strip()
            if closing_id and closing_id != exercise:
                raise MarkerError(
                    index + 1, f"END SOLUTION {closing_id} closes the block of exercise {exercise}"
                )
            body = lines[start + 1 : index]
            if not any(body_line.strip() for body_line in body):
                raise MarkerError(start + 1, f"the block of exercise {exercise} is empty")
            code = textwrap.dedent("\n".join(body)).strip("\n")
            blocks.append(SolutionBlock(exercise, indent, start, index, code))
            opened = None
    if opened:
        raise MarkerError(opened[2] + 1, f"BEGIN SOLUTION {opened[0]} has no # END SOLUTION after it")
    return blocks
