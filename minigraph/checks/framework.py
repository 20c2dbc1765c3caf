'''The exercise checks: how a chapter registers them, and how a learner runs them.

The learner, in an exercise notebook::

    from minigraph.checks import check, hint, solution

    check("1.1", stable_softmax)   # prints a report and returns a CheckResult
    hint("1.1")                    # prints the hint
    solution("1.1")                # prints the reference solution

Writing the checks of a chapter
-------------------------------
Chapter ``N`` registers its checks in ``minigraph/checks/chNN.py`` (chapter 1 in ``ch01.py``); that module is
imported the first time one of its exercises is checked. A complete example::

    import numpy as np

    from .framework import CheckFailure, exercise, expect_close, expect_equal, expect_shape


    def reference_softmax(z):
        """Row-wise softmax, shifted by each row's max so that exp never overflows."""
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


    @exercise("1.1", "stable softmax", hint="Subtract each row's max before exponentiating.")
    def _(stable_softmax):
        rng = np.random.default_rng(0)                      # seed: the report must be deterministic
        cases = [np.array([[1.0, 2.0, 3.0]]), rng.normal(size=(4, 10)), np.array([[1e4, 0.0, -1e4]])]
        for z in cases:
            got = stable_softmax(z.copy())                  # a copy: the learner may modify it
            expect_shape(got, z.shape, input=z, what="softmax(z)")
            expect_close(got, reference_softmax(z), input=z, what="softmax(z)")
        if not np.all(np.isfinite(stable_softmax(np.array([[1e5, -1e5]])))):
            raise CheckFailure("softmax(z) is not finite for logits of 1e5", input=np.array([[1e5, -1e5]]))
        return f"{len(cases) + 1} cases, including logits of 1e4"  # printed after "passed —"

The rules:

- The checker's parameters are what the learner passes: ``check("1.1", stable_softmax)`` calls it with
  ``stable_softmax``. Keyword arguments pass through, so a checker may take optional ones
  (``check("0.1", mean_digit, images=x, labels=y)``); a call that does not fit the signature is reported
  with the expected usage.
- It calls the learner's code and compares with :func:`expect_close`, :func:`expect_equal` and
  :func:`expect_shape`, which raise :class:`CheckFailure` carrying the input, the expected and the obtained
  value; it may raise ``CheckFailure(message, input=..., expected=..., got=...)`` itself. ``input`` may be a
  dict, shown one entry per line (``input={"z": z, "axis": 1}``).
- It returns a short summary (or None), printed on success — or ``Passed(summary, value=...)`` to hand a
  value back to the notebook as ``check(...).value`` (e.g. the history of a training run to plot).
- It never needs try/except: ``NotImplementedError`` becomes "not implemented yet"; another exception
  whose traceback passes through the learner's code becomes "your code raised ...", with the learner's
  line; any other exception is reported as an internal error of the check. So validate what the learner
  returns (``expect_shape`` first) before indexing into it.
- numpy's floating-point warnings are silenced while a check runs: an overflow shows up as inf or NaN in
  the reported value instead.
- Reports are regression-tested in the solution notebooks: seed any random data.
- ``solution=`` (optional) is the reference solution shown by ``solution("1.1")``: source text, or a
  function whose source is shown. Without it, ``solution`` shows the exercise's blocks of
  ``solutions/NN_name.ipynb`` when the course repository is at hand.

What a learner sees
-------------------
``check`` prints plain text: one line on success (``✓ Exercise 1.1 (stable softmax): passed — ...``) or
when the stub is still there (``… Exercise 1.1 (stable softmax): not implemented yet — ...``); on failure
a line, then the input, the expected and the obtained value, and the hint. It returns a
:class:`CheckResult`, true when passed, which shows nothing in Jupyter (the report is already printed), so
``check(...)`` can end a cell and ``assert check(...)`` works in a script. When the environment variable
``MINIGRAPH_CHECK_LOG`` names a file, each check appends one JSON line
``{"exercise": "1.1", "title": "stable softmax", "status": "passed"}`` to it (see ``minigraph.progress``).
'''

import importlib
import inspect
import json
import os
import pkgutil
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .markers import EXERCISE_ID, exercise_order, solution_blocks, stub_message, stubbed_exercise
from .report import describe_type, format_location, format_value, innermost_frame, labelled, learner_frame

PASSED, FAILED, NOT_IMPLEMENTED = "passed", "failed", "not implemented"
LOG_VARIABLE = "MINIGRAPH_CHECK_LOG"
_SOLUTIONS_FOLDER = Path(__file__).resolve().parents[2] / "solutions"  # present in the course repository
_CHAPTER_MODULE = re.compile(r"ch(\d\d)")


class _NotGiven:
    def __repr__(self):
        return "not given"


NOT_GIVEN = _NotGiven()


@dataclass(frozen=True)
class Exercise:
    """A registered exercise: its id ("1.1"), title, hint, checker and optional reference solution."""

    id: str
    title: str
    hint: str
    checker: object
    solution: str | None

    @property
    def name(self):
        return f"exercise {self.id} ({self.title})"


_REGISTRY = {}


def exercise(exercise_id, title, *, hint, solution=None):
    """Decorator registering ``checker`` as the check of ``exercise_id`` (e.g. ``"1.1"``)."""
    chapter = _chapter(exercise_id)

    def register(checker):
        module = _CHAPTER_MODULE.fullmatch(checker.__module__.rpartition(".")[2])
        if checker.__module__.startswith(__package__) and module and int(module[1]) != chapter:
            raise ValueError(
                f"exercise {exercise_id} belongs in minigraph/checks/ch{chapter:02d}.py, "
                f"not in {checker.__module__}"
            )
        previous = _REGISTRY.get(exercise_id)
        if previous and previous.checker.__module__ != checker.__module__:
            raise ValueError(
                f"exercise {exercise_id} is registered twice: in {previous.checker.__module__} "
                f"and in {checker.__module__}"
            )
        source = inspect.getsource(solution) if callable(solution) else solution
        reference = textwrap.dedent(source).strip("\n") if source else None
        _REGISTRY[exercise_id] = Exercise(exercise_id, title, hint, checker, reference)
        return checker

    return register


def all_exercises():
    """Every exercise of every chapter module, in order: a list of ``(id, title)``."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if _CHAPTER_MODULE.fullmatch(module.name):
            importlib.import_module(f"{__package__}.{module.name}")
    return [(key, _REGISTRY[key].title) for key in sorted(_REGISTRY, key=exercise_order)]


class CheckFailure(Exception):
    """A wrong answer: what is wrong, and optionally the input, the expected and the obtained value."""

    def __init__(self, message, input=NOT_GIVEN, expected=NOT_GIVEN, got=NOT_GIVEN):
        super().__init__(message)
        self.message, self.input, self.expected, self.got = message, input, expected, got

    def report_lines(self):
        """The failure as indented report lines; expected and got mention types that differ."""
        entries = []
        inputs = self.input if isinstance(self.input, dict) else {"": self.input}
        for name, value in inputs.items():
            if value is not NOT_GIVEN:
                entries.append((f"input {name}".strip(), format_value(value)))
        both_given = self.expected is not NOT_GIVEN and self.got is not NOT_GIVEN
        types_differ = describe_type(self.expected) != describe_type(self.got)
        for label, value in (("expected", self.expected), ("got", self.got)):
            if value is not NOT_GIVEN:
                entries.append((label, format_value(value, with_type=both_given and types_differ)))
        lines = [f"  {line}" for line in self.message.split("\n")]
        lines += labelled(entries) if entries else []
        return lines


def expect_shape(got, shape, *, dtype=None, input=NOT_GIVEN, what="the result"):
    """Fail unless ``got`` is a numpy array of ``shape`` (None matches any size) and, if given, ``dtype``.

    ``dtype`` may be abstract: ``np.floating`` accepts float32 and float64.
    """
    _expect_not_none(got, input, what)
    if not isinstance(got, np.ndarray):
        raise CheckFailure(
            f"{what} should be a numpy array of shape {tuple(shape)}, not a {type(got).__name__}",
            input=input,
            got=got,
        )
    fits = len(got.shape) == len(shape) and all(want in (None, size) for want, size in zip(shape, got.shape))
    if not fits:
        raise CheckFailure(f"{what} has shape {got.shape}, expected {tuple(shape)}", input=input, got=got)
    if dtype is not None and not np.issubdtype(got.dtype, dtype):
        wanted = np.dtype(dtype).name if isinstance(dtype, (str, np.dtype)) else dtype.__name__
        raise CheckFailure(f"{what} has dtype {got.dtype}, expected {wanted}", input=input, got=got)


def expect_close(got, expected, *, input=NOT_GIVEN, rtol=1e-5, atol=1e-8, what="the result"):
    """Fail unless ``got`` has the shape of ``expected`` and |got - expected| <= atol + rtol |expected|.

    NaN matches NaN; a NaN or inf that should not be there is named in the message.
    """
    expected = np.asarray(expected)
    got_array = _as_numeric(got, expected, input, what)
    close = np.isclose(got_array, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        tolerance = f"(tolerance: rtol={rtol:g}, atol={atol:g})"
        raise CheckFailure(
            f"{_differences(got_array, expected, ~close, what)} {tolerance}", input=input, expected=expected, got=got
        )


def expect_equal(got, expected, *, input=NOT_GIVEN, what="the result"):
    """Fail unless ``got`` equals ``expected``: exactly, element by element for arrays."""
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
        expected = np.asarray(expected)
        got_array = _as_array(got, expected, input, what)
        different = got_array != expected
        if different.any():
            raise CheckFailure(
                _differences(got_array, expected, different, what), input=input, expected=expected, got=got
            )
        return
    try:
        equal = bool(got == expected)
    except Exception:  # an object whose == does not give a truth value is not equal
        equal = False
    if not equal:
        kinds = type(expected).__name__, type(got).__name__
        message = f"{what} is a {kinds[1]}, expected a {kinds[0]}" if kinds[0] != kinds[1] else f"{what} is wrong"
        raise CheckFailure(message, input=input, expected=expected, got=got)


def _expect_not_none(got, input, what, expected=NOT_GIVEN):
    if got is None:
        raise CheckFailure(
            f"{what} is None: does your function end with a return statement?",
            input=input,
            expected=expected,
            got=None,
        )


def _as_array(got, expected, input, what):
    _expect_not_none(got, input, what, expected)
    got_array = np.asarray(got)
    if got_array.shape != expected.shape:
        raise CheckFailure(
            f"{what} has shape {got_array.shape}, expected {expected.shape}",
            input=input,
            expected=expected,
            got=got,
        )
    return got_array


def _as_numeric(got, expected, input, what):
    try:
        got_array = _as_array(got, expected, input, what)
    except (TypeError, ValueError):  # a ragged list or an object numpy cannot convert
        raise CheckFailure(
            f"{what} should be an array, not a {type(got).__name__}", input=input, expected=expected, got=got
        ) from None
    if not (np.issubdtype(got_array.dtype, np.number) or got_array.dtype == bool):
        raise CheckFailure(
            f"{what} should hold numbers, not {got_array.dtype}", input=input, expected=expected, got=got
        )
    return got_array


def _differences(got, expected, wrong, what):
    """Where ``got`` and ``expected`` differ (``wrong`` marks the positions), worst position first."""
    if got.ndim == 0:
        return f"{what} is {format_value(got.item())}, expected {format_value(expected.item())}"
    gap = np.abs(got.astype(float) - expected.astype(float))
    worst = np.unravel_index(np.argmax(np.where(wrong, np.nan_to_num(gap, nan=np.inf), -1.0)), got.shape)
    index = tuple(int(i) for i in worst)
    return (
        f"{what} differs from the expected value at {int(wrong.sum())} of {got.size} positions; "
        f"at index {index[0] if len(index) == 1 else index} it is {format_value(got[worst])}, "
        f"expected {format_value(expected[worst])}"
    )


@dataclass(frozen=True)
class Passed:
    """What a checker may return instead of a bare summary: the summary and a value for the notebook,
    e.g. ``return Passed("test accuracy 0.925", value=history)``; the learner gets it as ``check(...).value``."""

    summary: str
    value: object = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of :func:`check`: true when passed; ``status`` is "passed", "failed" or "not implemented";
    ``value`` is what a passing checker handed back with :class:`Passed` (e.g. a training history)."""

    exercise: str
    status: str
    value: object = None

    def __bool__(self):
        return self.status == PASSED

    def __repr__(self):
        return f"<check of exercise {self.exercise}: {self.status}>"

    def _ipython_display_(self):
        """Show nothing in Jupyter: :func:`check` has printed the report already."""


def check(exercise_id, *args, **kwargs):
    """Run the check of ``exercise_id`` on the learner's ``args``; print the report; return a CheckResult."""
    try:
        exercise = _lookup(exercise_id)
    except LookupError as unknown:
        print(f"✗ {unknown.args[0]}")
        return CheckResult(str(exercise_id), FAILED)
    except Exception as error:  # a chapter module that does not import: a bug of the course
        print(f"✗ Exercise {exercise_id}: {_internal_error(error)}")
        return CheckResult(str(exercise_id), FAILED)
    status, lines, value = _run(exercise, args, kwargs)
    print("\n".join(lines))
    log_path = os.environ.get(LOG_VARIABLE)
    if log_path:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"exercise": exercise.id, "title": exercise.title, "status": status}) + "\n")
    return CheckResult(exercise.id, status, value)


def hint(exercise_id):
    """Print the hint of ``exercise_id``."""
    exercise = _lookup_or_print(exercise_id)
    if exercise:
        print(f"Hint for {exercise.name}: {exercise.hint}")


def solution(exercise_id):
    """Print the reference solution of ``exercise_id``: registered with it, or from the solutions notebook."""
    exercise = _lookup_or_print(exercise_id)
    if not exercise:
        return
    code = exercise.solution or _solution_from_notebook(exercise.id)
    if code:
        stub = f'raise NotImplementedError("{stub_message(exercise.id)}")'
        print(f"Reference solution of {exercise.name}, in place of {stub}:\n\n{code}")
    else:
        print(f"No reference solution of {exercise.name} is available here: look in solutions/ of the course.")


def _run(exercise, args, kwargs):
    """Call the checker; return the status, the report lines and the value a :class:`Passed` carries."""
    heading = f"Exercise {exercise.id} ({exercise.title})"
    try:
        bound = inspect.signature(exercise.checker).bind(*args, **kwargs)
    except TypeError as wrong_call:
        return FAILED, [f"✗ {heading}: {wrong_call} — call it as {_usage(exercise)}"], None
    try:
        with np.errstate(all="ignore"):
            summary = exercise.checker(*bound.args, **bound.kwargs)
    except NotImplementedError as stub:
        return NOT_IMPLEMENTED, [f"… {heading}: not implemented yet — {_unfinished(exercise.id, stub)}"], None
    except CheckFailure as failure:
        return FAILED, [f"✗ {heading}: failed", *failure.report_lines(), _hint_line(exercise)], None
    except Exception as error:
        frame = learner_frame(error.__traceback__, exercise.checker.__code__.co_filename)
        if frame is None:
            return FAILED, [f"✗ {heading}: {_internal_error(error)}"], None
        lines = [f"✗ {heading}: your code raised {_exception_text(error)}"]
        return FAILED, [*lines, f"  at {format_location(*frame)}", _hint_line(exercise)], None
    summary, value = (summary.summary, summary.value) if isinstance(summary, Passed) else (summary, None)
    return PASSED, [f"✓ {heading}: passed" + (f" — {summary}" if summary else "")], value


def _usage(exercise):
    """``check("0.1", mean_digit) (optional: images=, labels=)`` from the checker's signature."""
    parameters = inspect.signature(exercise.checker).parameters.values()
    required = [p.name for p in parameters if p.default is inspect.Parameter.empty]
    optional = [f"{p.name}=" for p in parameters if p.default is not inspect.Parameter.empty]
    usage = f'check("{exercise.id}"' + "".join(f", {name}" for name in required) + ")"
    return usage + (f" (optional: {', '.join(optional)})" if optional else "")


def _unfinished(exercise_id, stub):
    """What to do about a NotImplementedError: the learner's stub, another exercise's, or another one."""
    message = str(stub)
    needed = stubbed_exercise(message)
    if needed == exercise_id:
        return "replace the line raise NotImplementedError(...) with your code, run that cell, then this one"
    if needed:
        return f"it needs exercise {needed} first"
    return f"your code raised NotImplementedError{': ' + message if message else ''}"


def _hint_line(exercise):
    return f"  hint: {exercise.hint}"


def _exception_text(error):
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _internal_error(error):
    where = format_location(*innermost_frame(error.__traceback__))
    return (
        f"internal error: the check itself failed ({_exception_text(error)} at {where}). "
        "This is a bug in the course, not in your code; please report it."
    )


def _lookup(exercise_id):
    """The registered exercise; imports its chapter's module on first use. LookupError names the problem."""
    chapter = _chapter(exercise_id)
    if exercise_id not in _REGISTRY:
        module = f"{__package__}.ch{chapter:02d}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as missing:
            if missing.name != module:
                raise
    if exercise_id not in _REGISTRY:
        known = [key for key in sorted(_REGISTRY, key=exercise_order) if _chapter(key) == chapter]
        listing = f"chapter {chapter} has {', '.join(known)}" if known else f"chapter {chapter} has none"
        raise LookupError(f"There is no exercise {exercise_id}: {listing}.")
    return _REGISTRY[exercise_id]


def _lookup_or_print(exercise_id):
    try:
        return _lookup(exercise_id)
    except LookupError as unknown:
        print(unknown.args[0])
        return None


def _chapter(exercise_id):
    """The chapter number of an id like "1.1"; LookupError for anything else."""
    if not isinstance(exercise_id, str) or not EXERCISE_ID.fullmatch(exercise_id):
        raise LookupError(f'Exercise ids are strings like "1.1", not {exercise_id!r}.')
    return int(exercise_id.split(".")[0])


def _solution_from_notebook(exercise_id):
    """The blocks of ``exercise_id`` in the course's solutions notebook, or None when there is none."""
    blocks = []
    for path in sorted(_SOLUTIONS_FOLDER.glob(f"{_chapter(exercise_id):02d}_*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                blocks += [block.code for block in solution_blocks(source) if block.exercise == exercise_id]
    return "\n\n".join(blocks) or None
