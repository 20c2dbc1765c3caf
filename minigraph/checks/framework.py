'''The exercise checks: how a chapter declares them, and how a learner runs them.

The learner, in an exercise notebook::

    from minigraph.checks import check, hint, solution

    check("2.1", topological_sort)   # ✓ passed — or what is wrong, with the input, expected and got
    hint("2.1")                      # more than the one-line hint a failure prints
    solution("2.1")                  # the reference code, once they have tried

Declaring the exercises of a chapter
------------------------------------
Chapter ``N`` declares its exercises in ``minigraph/checks/chNN.py`` (chapter 2 in ``ch02.py``), imported
the first time one of them is checked. A complete example, exercise 2.1::

    import minigraph as mg

    from .framework import CheckFailure, Text, exercise, expect_equal


    @exercise(
        "2.1", "topological sort",
        expects="topological_sort(fetches)",             # the stub the learner fills in
        nudge="Visit a node's inputs before the node itself, and remember the nodes already visited.",
        hint="Depth-first search with your own stack (a list) of (node, index of the next input) pairs: "
        "push unvisited inputs one by one; once all are done, pop the node and append it to the order.",
        unavailable=[mg.topological_sort],               # "write your own": the package's own is refused
        time_limit=20,                                   # seconds; the default is DEFAULT_TIME_LIMIT
    )
    def _(topological_sort):
        a = mg.placeholder("a", shape=(2,))
        y = a * a + a
        got = topological_sort([y])
        expect_equal(len(got), 3, input=Text("y = a * a + a"), what="the number of nodes in the order")
        if got[-1] is not y:
            raise CheckFailure("the fetch must come last: it depends on every other node",
                               input=Text("y = a * a + a"), got=[node.name for node in got])
        return "1 graph"                                 # printed after "passed —"

What each part does:

- ``expects``: the learner's code as the exercise's stub declares it, one entry per parameter of the
  checker: ``"softmax(z)"`` for a function (``"def softmax(z): ..."`` also works), the stub of a class
  for a class (``"class Affine(mg.Op):\\n    def compute(self, node, input_values): ...\\n    def
  infer_shape(self, node, input_shapes): ..."``; the base classes are not checked). Before the checker
  runs, each argument is checked against its stub — a class where a class is expected, each method present,
  every call the checker makes accepted — so that wrong parameters are reported as the learner's mistake,
  naming the expected ones. The checker calls the learner's code as the stub reads: parameters without a
  default by position, the others by name.
- ``nudge`` (one sentence, no code) is printed under a failure; ``hint`` (the steps, still not the code)
  is what ``hint(id)`` prints; ``solution`` (optional: source text or a function) is what
  ``solution(id)`` prints — by default the exercise's blocks of ``solutions/NN_name.ipynb``.
- ``unavailable``: package functions (or methods, ``mg.Session.run``) that the exercise asks the learner to
  write. While the check runs they refuse calls coming from the learner's code — also through a name the
  notebook imported — and a learner passing one of them itself (``check("2.1", mg.topological_sort)``) is
  told so before anything runs; the checker's and minigraph's own calls work as usual. List every public
  function that does the job (``mg.gradients`` and ``mg.tf.gradients``): a wrapper calls the function
  from the package, which is allowed.
- ``time_limit``: seconds the whole check may take (set it to about ten times what the reference solution
  needs on a laptop, with one BLAS thread); when it is up, the learner's code is interrupted where it was
  running and the report shows that line ("timed out").

The checker:

- calls the learner's code and compares with :func:`expect_close`, :func:`expect_equal` and
  :func:`expect_shape`, which raise :class:`CheckFailure` carrying the input, the expected and the obtained
  value; it may raise ``CheckFailure(message, input=..., expected=..., got=...)`` itself. Every pass/fail
  decision goes through these helpers (or :func:`is_close` and :func:`same_value`, which answer True or
  False for a checker that words its own message): they use the checker's own references to
  numpy's functions on plain arrays, so a patched ``np.isclose`` or an object whose ``==`` is always true
  cannot pass. Use ``np.allclose`` and friends only to choose a more precise failure message.
- calls the learner's functions through :func:`call_unchanged` (fails if an array argument was changed in
  place, showing it before and after) or with :func:`read_only` arrays; builds ``input=`` from values
  that the learner's code cannot change (copies), so that a report shows the input as it was.
- shows a description with ``Text("...")`` (no quotes, no type); ``input`` may be a dict, one entry per line.
- returns a short summary (or None), printed on success — or ``Passed(summary, value=...)`` to hand a
  value back to the notebook as ``check(...).value`` (e.g. the history of a training run to plot).
- never needs try/except: ``NotImplementedError`` from a stub becomes "not implemented yet"; another
  exception whose traceback passes through the learner's code becomes "your code raised ...", with the
  learner's line; any other exception is reported as an internal error of the check. So validate what the
  learner returns (``expect_shape`` first) before indexing into it.
- runs with numpy's floating-point warnings silenced: an overflow shows up as inf or NaN instead.
- is deterministic: its report is regression-tested in the solution notebooks, so seed any random data.

What a learner sees
-------------------
One line on success (``✓ Exercise 1.1 (stable softmax): passed — ...``) or while the stub is still there
(``… Exercise 1.1 (stable softmax): not implemented yet — ...``); on failure a line, what is wrong, the
input, the expected and the obtained value, and the nudge (``hint: ... More: hint("1.1").``). Prose is
wrapped between words (at 100 columns in plain text). In JupyterLab the report is rich output (the same
lines in a box coloured by the status); elsewhere it is printed. :func:`check` returns a :class:`CheckResult`, true when
passed, which shows nothing in Jupyter, so ``check(...)`` can end a cell and ``assert check(...)`` works in
a script. When the environment variable ``MINIGRAPH_CHECK_LOG`` names a file, each check appends one JSON
line ``{"exercise": "1.1", "title": "stable softmax", "status": "passed"}`` to it (see
``minigraph.progress``); the statuses are "passed", "failed", "not implemented" and "timed out".
'''

import ast
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

from .expect import (
    CheckFailure,
    call_unchanged,
    expect_close,
    expect_equal,
    expect_shape,
    is_close,
    read_only,
    same_value,
)
from .limits import TimeLimitExceeded, UnavailableFunction, given_itself, time_limit, unavailable
from .markers import EXERCISE_ID, exercise_order, solution_blocks, stub_message, stubbed_exercise
from .report import Prose, Report, Text, format_location, innermost_frame, learner_frame, plain_lines, prose, show

__all__ = ["exercise", "check", "hint", "solution", "all_exercises", "CheckFailure", "CheckResult", "Passed",
           "Text", "expect_close", "expect_equal", "expect_shape", "is_close", "same_value", "call_unchanged",
           "read_only"]

PASSED, FAILED, NOT_IMPLEMENTED, TIMED_OUT = "passed", "failed", "not implemented", "timed out"
DEFAULT_TIME_LIMIT = 20  # seconds
LOG_VARIABLE = "MINIGRAPH_CHECK_LOG"
_SOLUTIONS_FOLDER = Path(__file__).resolve().parents[2] / "solutions"  # present in the course repository
_CHAPTER_MODULE = re.compile(r"ch(\d\d)")


# ---------------------------------------------------------------------------------------------- declaring


@dataclass(frozen=True)
class Stub:
    """What the learner passes for one parameter of a checker: a function or class as the stub declares it."""

    name: str
    declared: object  # the function or class the stub's source defines (bodies empty)
    source: str

    @property
    def is_class(self):
        return isinstance(self.declared, type)


@dataclass(frozen=True)
class Exercise:
    """A declared exercise; see the module's documentation for the meaning of each field."""

    id: str
    title: str
    stubs: tuple
    nudge: str
    hint: str
    solution: str | None
    unavailable: tuple
    time_limit: float
    checker: object

    @property
    def name(self):
        return f"exercise {self.id} ({self.title})"


_REGISTRY = {}


def exercise(exercise_id, title, *, expects, nudge, hint, solution=None, unavailable=(),
             time_limit=DEFAULT_TIME_LIMIT):
    """Decorator declaring ``checker`` as the check of ``exercise_id`` (e.g. ``"1.1"``); see the module."""
    chapter = _chapter(exercise_id)
    stubs = tuple(_stub(text) for text in ([expects] if isinstance(expects, str) else expects))

    def register(checker):
        module = _CHAPTER_MODULE.fullmatch(checker.__module__.rpartition(".")[2])
        if checker.__module__.startswith(__package__) and module and int(module[1]) != chapter:
            raise ValueError(f"exercise {exercise_id} belongs in minigraph/checks/ch{chapter:02d}.py, "
                             f"not in {checker.__module__}")
        previous = _REGISTRY.get(exercise_id)
        if previous and previous.checker.__module__ != checker.__module__:
            raise ValueError(f"exercise {exercise_id} is registered twice: in {previous.checker.__module__} "
                             f"and in {checker.__module__}")
        required = [p for p in inspect.signature(checker).parameters.values() if p.default is inspect.Parameter.empty]
        if len(required) != len(stubs):
            raise ValueError(f"exercise {exercise_id}: the checker takes {len(required)} argument(s) without a "
                             f"default but expects= declares {len(stubs)}")
        source = inspect.getsource(solution) if callable(solution) else solution
        reference = textwrap.dedent(source).strip("\n") if source else None
        _REGISTRY[exercise_id] = Exercise(exercise_id, title, stubs, nudge, hint, reference, tuple(unavailable),
                                          time_limit, checker)
        return checker

    return register


def _stub(text):
    """A :class:`Stub` from ``"softmax(z)"``, ``"def softmax(z): ..."`` or the source of a class stub."""
    source = textwrap.dedent(text).strip()
    if not source.startswith(("def ", "class ")):
        source = f"def {source}: ..."
    tree = ast.parse(source)
    (definition,) = tree.body
    if isinstance(definition, ast.ClassDef):
        definition.bases, definition.keywords = [], []  # mg.Op and the like are not needed to read a stub
    namespace = {}
    exec(compile(tree, "<stub>", "exec"), namespace)
    return Stub(definition.name, namespace[definition.name], source)


def all_exercises():
    """Every exercise of every chapter module, in order: a list of ``(id, title)``."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if _CHAPTER_MODULE.fullmatch(module.name):
            importlib.import_module(f"{__package__}.{module.name}")
    return [(key, _REGISTRY[key].title) for key in sorted(_REGISTRY, key=exercise_order)]


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Passed:
    """What a checker may return instead of a bare summary: the summary and a value for the notebook,
    e.g. ``return Passed("test accuracy 0.925", value=history)``; the learner gets it as ``check(...).value``."""

    summary: str
    value: object = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of :func:`check`: true when passed; ``status`` is one of "passed", "failed",
    "not implemented" and "timed out"; ``value`` is what a passing checker handed back with :class:`Passed`."""

    exercise: str
    status: str
    value: object = None

    def __bool__(self):
        return self.status == PASSED

    def __repr__(self):
        return f"<check of exercise {self.exercise}: {self.status}>"

    def _ipython_display_(self):
        """Show nothing in Jupyter: :func:`check` has shown the report already."""


# ---------------------------------------------------------------------------------------------- the learner's API


def check(exercise_id, *args, **kwargs):
    """Run the check of ``exercise_id`` on the learner's ``args``; show the report; return a CheckResult."""
    try:
        exercise = _lookup(exercise_id)
    except LookupError as unknown:
        show(Report(FAILED, unknown.args[0]))
        return CheckResult(str(exercise_id), FAILED)
    except Exception as error:  # a chapter module that does not import: a bug of the course
        show(Report(FAILED, f"Exercise {exercise_id}: {_internal_error(error)}"))
        return CheckResult(str(exercise_id), FAILED)
    report, value = _run(exercise, args, kwargs)
    show(report)
    status = report.status
    log_path = os.environ.get(LOG_VARIABLE)
    if log_path:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"exercise": exercise.id, "title": exercise.title, "status": status}) + "\n")
    return CheckResult(exercise.id, status, value)


def hint(exercise_id):
    """Print the hint of ``exercise_id``: more than the nudge a failure shows, less than the solution."""
    exercise = _lookup_or_print(exercise_id)
    if exercise:
        lines = plain_lines(Prose(f"Hint for {exercise.name}: {exercise.hint}"))
        print("\n".join(lines + [f'The reference code: solution("{exercise.id}").']))


def solution(exercise_id):
    """Print the reference solution of ``exercise_id``: declared with it, or from the solutions notebook."""
    exercise = _lookup_or_print(exercise_id)
    if not exercise:
        return
    code = exercise.solution or _solution_from_notebook(exercise.id)
    if code:
        stub = f'raise NotImplementedError("{stub_message(exercise.id)}")'
        print(f"Reference solution of {exercise.name}, in place of {stub}:\n\n{code}")
    else:
        print(f"No reference solution of {exercise.name} is available here: look in solutions/ of the course.")


# ---------------------------------------------------------------------------------------------- running a check


def _run(exercise, args, kwargs):
    """Call the checker; return the :class:`Report` and the value a :class:`Passed` carries."""
    name = f"Exercise {exercise.id} ({exercise.title})"
    try:
        bound = inspect.signature(exercise.checker).bind(*args, **kwargs)
    except TypeError as wrong_call:
        return Report(FAILED, f"{name}: {wrong_call} — call it as {_usage(exercise)}"), None
    learner_code = list(bound.args[:len(exercise.stubs)])
    problem = _misfit(exercise, learner_code)
    if problem:
        return Report(FAILED, f"{name}: {problem}", [_nudge_line(exercise)]), None
    with unavailable(exercise.unavailable, learner_code, exercise.checker.__code__.co_filename) as uses:
        report, value = _call_checker(exercise, name, bound)
    if uses:
        function, location = uses[0]
        heading = (f"{name}: your code called {function}, minigraph's own version of what this exercise asks you "
                   "to write; while this check runs, your code has to do without it")
        return Report(FAILED, heading, [f"  at {format_location(*location)}", _nudge_line(exercise)]), None
    return report, value


def _call_checker(exercise, name, bound):
    try:
        with np.errstate(all="ignore"), time_limit(exercise.time_limit):
            summary = exercise.checker(*bound.args, **bound.kwargs)
    except TimeLimitExceeded as stopped:
        where = learner_frame(stopped.__traceback__, exercise.checker.__code__.co_filename)
        lines = [f"  your code was running at {format_location(*where)}"] if where else []
        heading = (f"{name}: stopped after {exercise.time_limit:g} s, the time limit of this check: does a loop "
                   "in your code never end?")
        return Report(TIMED_OUT, heading, [*lines, _nudge_line(exercise)]), None
    except NotImplementedError as stub:
        return Report(NOT_IMPLEMENTED, f"{name}: not implemented yet — {_unfinished(exercise.id, stub)}"), None
    except CheckFailure as failure:
        return Report(FAILED, f"{name}: failed", [*failure.report_lines(), _nudge_line(exercise)]), None
    except UnavailableFunction:  # reported by _run
        return Report(FAILED, name), None
    except Exception as error:
        frame = learner_frame(error.__traceback__, exercise.checker.__code__.co_filename)
        if frame is None:
            return Report(FAILED, f"{name}: {_internal_error(error)}"), None
        lines = [f"  at {format_location(*frame)}"]
        if isinstance(error, ValueError) and "read-only" in str(error):
            lines += prose("the check gives your function read-only arrays, so that changing an input fails at "
                           "the line that does it: compute a new array instead (x = x - 1, not x -= 1)")
        return Report(FAILED, f"{name}: your code raised {_exception_text(error)}", [*lines, _nudge_line(exercise)]), None
    summary, value = (summary.summary, summary.value) if isinstance(summary, Passed) else (summary, None)
    return Report(PASSED, f"{name}: passed" + (f" — {summary}" if summary else "")), value


def _misfit(exercise, learner_code):
    """Why the learner's functions or classes cannot be used as the exercise's stubs declare, or None."""
    for stub, given in zip(exercise.stubs, learner_code):
        itself = given_itself(given, exercise.unavailable)
        if itself:
            return (f"you passed {itself}, minigraph's own version of what this exercise asks you to write: "
                    f"write your own {stub.name}")
        problem = _class_misfit(stub, given) if stub.is_class else _function_misfit(stub, given)
        if problem:
            return problem
    return None


def _function_misfit(stub, given):
    if isinstance(given, type) or not callable(given):
        return f"expected your function {stub.name}, got {_described(given)}: pass the function itself, {_usage_of(stub)}"
    return _call_misfit(stub.declared, given, stub.name)


def _class_misfit(stub, given):
    if not isinstance(given, type):
        return (f"expected your class {stub.name}, got {_described(given)}: pass the class itself, "
                f"check(..., {stub.name}), not an instance of it")
    for name, declared in vars(stub.declared).items():
        if not inspect.isfunction(declared):
            continue
        if name == "__init__":
            problem = _call_misfit(declared, given, given.__name__, skip_self=True)
        elif not callable(getattr(given, name, None)):
            return f"your class {given.__name__} has no method {name}: the check calls {_signature_text(declared)}"
        else:
            problem = _call_misfit(declared, getattr(given, name), f"{given.__name__}.{name}")
        if problem:
            return problem
    return None


def _call_misfit(declared, given, shown, skip_self=False):
    """Why ``given`` does not accept the calls ``declared`` describes (required parameters by position, the
    others by name), or None."""
    try:
        theirs = inspect.signature(given)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to compare
        return None
    parameters = list(inspect.signature(declared).parameters.values())[1 if skip_self else 0:]
    positional = [p for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    named = [p for p in parameters if p not in positional and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    try:
        theirs.bind(*[None] * len(positional), **{p.name: None for p in named})
    except TypeError as error:
        wanted = f"{shown}({', '.join(str(p) for p in parameters)})"
        return (f"the check calls {wanted}, which your {shown}{theirs} cannot take ({error}): keep the "
                "parameters of the exercise")
    return None


def _signature_text(function):
    return f"{function.__name__}{inspect.signature(function)}"


def _described(value):
    return f"the class {value.__name__}" if isinstance(value, type) else f"a {type(value).__name__}"


def _usage(exercise):
    """``check("0.1", mean_digit) (optional: images=, labels=)`` from the stubs and the checker's signature."""
    optional = [f"{p.name}=" for p in inspect.signature(exercise.checker).parameters.values()
                if p.default is not inspect.Parameter.empty]
    usage = f'check("{exercise.id}"' + "".join(f", {stub.name}" for stub in exercise.stubs) + ")"
    return usage + (f" (optional: {', '.join(optional)})" if optional else "")


def _usage_of(stub):
    return f"the one defined as def {stub.name}{inspect.signature(stub.declared)}"


def _unfinished(exercise_id, stub):
    """What to do about a NotImplementedError: the learner's stub, another exercise's, or another one."""
    message = str(stub)
    needed = stubbed_exercise(message)
    if needed == exercise_id:
        return "replace the line raise NotImplementedError(...) with your code, run that cell, then this one"
    if needed:
        return f"it needs exercise {needed} first"
    return f"your code raised NotImplementedError{': ' + message if message else ''}"


def _nudge_line(exercise):
    return Prose(f'  hint: {exercise.nudge} More: hint("{exercise.id}").')


def _exception_text(error):
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _internal_error(error):
    where = format_location(*innermost_frame(error.__traceback__))
    return (f"internal error: the check itself failed ({_exception_text(error)} at {where}). "
            "This is a bug in the course, not in your code; please report it.")


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
