"""The learner-facing checks: what check(), hint() and solution() show and return, the declaration of an
exercise (its stubs, hints, unavailable functions and time limit), and the expect helpers."""

import json
import linecache
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minigraph as mg
from minigraph.checks import CheckFailure, all_exercises, check, framework, hint, solution
from minigraph.checks.framework import (
    Passed,
    Text,
    call_unchanged,
    exercise,
    expect_close,
    expect_equal,
    expect_shape,
    is_close,
    same_value,
)
from minigraph.checks.report import WIDTH, Report
from minigraph.progress import CELL_TIME_LIMIT

FIXTURE_SOLUTIONS = Path(__file__).parent / "fixtures" / "solutions"


def learner(source, name, namespace=None):
    """Define ``name`` from ``source`` as if typed in a notebook cell: its own file name, lines in linecache."""
    filename = f"/learner/cell_{name}_{len(linecache.cache)}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"np": np, "mg": mg} if namespace is None else namespace
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def flat(text):
    """The text with its line breaks and indentation folded: reports wrap long lines between words."""
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    """A copy of the full registry, so that the exercises registered by a test vanish after it."""
    all_exercises()  # imports every chapter module, registering its exercises
    monkeypatch.setattr(framework, "_REGISTRY", dict(framework._REGISTRY))
    monkeypatch.delenv(framework.LOG_VARIABLE, raising=False)


def register_double(**options):
    """Exercise 99.1: ``double(x)`` returns 2 x."""

    @exercise("99.1", "double", expects="double(x)", nudge="Multiply by two.", hint="x + x works, and so does 2 * x.",
              solution="return 2 * x", **options)
    def _(double):
        for x in (np.array([1.0, 2.0]), np.array([[0.5, -1.0]]), np.float64(3.0)):
            expect_close(double(x), 2 * x, input=x)
        return "3 cases, including a scalar"


# ---------------------------------------------------------------------------------------------- reports


def test_a_correct_solution_passes_with_one_line(capsys):
    register_double()
    result = check("99.1", learner("def double(x):\n    return x + x\n", "double"))
    assert capsys.readouterr().out == "✓ Exercise 99.1 (double): passed — 3 cases, including a scalar\n"
    assert result and result.status == "passed" and result.exercise == "99.1"


def test_a_checker_hands_a_value_back_only_when_passed(capsys):
    @exercise("99.2", "train", expects="train()", nudge="Return the history.", hint="A dict.")
    def _(train):
        history = train()
        expect_equal(len(history["epoch"]), 2, input=Text("train()"), what="number of epochs")
        return Passed("2 epochs", value=history)

    passed = check("99.2", learner('def train():\n    return {"epoch": [1, 2]}\n', "train"))
    failed = check("99.2", learner('def train():\n    return {"epoch": [1]}\n', "train"))
    assert capsys.readouterr().out.startswith("✓ Exercise 99.2 (train): passed — 2 epochs\n✗")
    assert passed.value == {"epoch": [1, 2]} and failed.value is None


def test_the_stub_reports_not_implemented_yet(capsys):
    register_double()
    stub = learner('def double(x):\n    raise NotImplementedError("Exercise 99.1")\n', "double")
    result = check("99.1", stub)
    out = capsys.readouterr().out
    assert flat(out).startswith("… Exercise 99.1 (double): not implemented yet — replace the line raise")
    assert "Traceback" not in out
    assert not result and result.status == "not implemented"


def test_a_stub_of_another_exercise_is_named(capsys):
    register_double()
    result = check("99.1", learner('def double(x):\n    raise NotImplementedError("Exercise 99.7")\n', "double"))
    assert capsys.readouterr().out.endswith("not implemented yet — it needs exercise 99.7 first\n")
    assert result.status == "not implemented"


def test_a_wrong_answer_shows_input_expected_got_and_the_nudge(capsys):
    register_double()
    result = check("99.1", learner("def double(x):\n    return x * x\n", "double"))
    assert capsys.readouterr().out.splitlines() == [
        "✗ Exercise 99.1 (double): failed",
        "  the result differs from the expected value at 1 of 2 positions; at index 0 it is 1, expected 2",
        "    (tolerance: rtol=1e-05, atol=1e-08)",
        "  input:    [1. 2.]",
        "  expected: [2. 4.]",
        "  got:      [1. 4.]",
        '  hint: Multiply by two. More: hint("99.1").',
    ]
    assert result.status == "failed" and not result


def test_shape_and_dtype_are_shown_only_where_they_differ(capsys):
    register_double()
    check("99.1", learner("def double(x):\n    return np.ravel(2 * x).astype(np.float32)\n", "double"))
    out = capsys.readouterr().out
    assert "  the result has shape (2,), expected (1, 2)" in out
    assert "  expected: [[ 1. -2.]]  (shape (1, 2), float64)" in out
    assert "  got:      [ 1. -2.]  (shape (2,), float32)" in out
    check("99.1", learner("def double(x):\n    return (3 * x).astype(np.float32) if np.ndim(x) else 6.0\n", "double"))
    lines = capsys.readouterr().out.splitlines()
    assert "  expected: [2. 4.]  (float64)" in lines and "  got:      [3. 6.]  (float32)" in lines  # no shape
    failure = CheckFailure("wrong", expected=np.float64(2.0), got=np.float32(3.0))
    assert failure.report_lines()[-2:] == ["  expected: 2", "  got:      3"]  # numbers: no type


def test_a_description_is_shown_without_quotes_or_internal_type_names():
    failure = CheckFailure("no ShapeError", input=Text("x: (None, 784)"), expected=Text("ShapeError"), got=(2, 5))
    assert failure.report_lines() == ["  no ShapeError", "  input:    x: (None, 784)", "  expected: ShapeError",
                                      "  got:      (2, 5)"]


def test_long_messages_wrap_between_words():
    words = [f"word{i}" for i in range(60)] + ["a_very_long_identifier_" * 6]
    text = Report("failed", "Exercise 99.1 (double): failed", CheckFailure(" ".join(words), input=np.arange(3))
                  .report_lines()).text
    lines = text.splitlines()
    assert len(lines) > 4 and all(len(line) <= WIDTH for line in lines if "identifier" not in line)
    assert lines[1].startswith("  word0") and lines[2].startswith("    word")  # continuation: two more spaces
    assert text.split()[5:-4] == words  # every word whole, in order
    assert lines[-1] == "  input: [0 1 2]"


def test_the_rich_report_holds_the_same_text_with_colour_and_symbol():
    for status, symbol, colour in (("passed", "✓", "#15803d"), ("failed", "✗", "#b91c1c"),
                                   ("timed out", "✗", "#b91c1c"), ("not implemented", "…", "#a16207")):
        message = CheckFailure("the <b> tag " * 20, expected=np.arange(30), got=1).report_lines()
        report = Report(status, "Exercise 99.1 (double): <b>", message)
        bundle = report._repr_mimebundle_()
        assert bundle["text/plain"] == report.text and report.text.startswith(f"{symbol} Exercise 99.1 (double): <b>")
        html = bundle["text/html"]
        assert f"border-left:0.3em solid {colour}" in html and f"color:{colour}" in html
        assert "&lt;b&gt;" in html and "<b>" not in html
        rows = re.findall(r'<div style="([^"]*)">(.*?)</div>', html[html.index(">") + 1:])  # inside the box
        assert [style for style, _ in rows[:2]] == ["padding-left:2ch;text-indent:-2ch",  # prose: the window wraps it
                                                    "padding-left:4ch;text-indent:-2ch"]
        assert {style for style, _ in rows[2:]} == {"white-space:pre"}  # values keep their lines
        shown = re.sub(r"<[^>]+>", " ", html).replace("&lt;", "<").replace("&gt;", ">")
        assert shown.split() == report.text.split()  # the same text, wrapped by the browser


def test_returning_none_asks_for_a_return_statement(capsys):
    register_double()
    check("99.1", learner("def double(x):\n    y = 2 * x\n", "double"))
    out = capsys.readouterr().out
    assert "the result is None: does your function end with a return statement?" in out
    assert "  got:      None\n" in out


def test_an_exception_in_learner_code_shows_its_line_and_the_nudge(capsys):
    register_double()
    double = learner("def double(x):\n    scale = {}['two']\n    return scale * x\n", "double")
    result = check("99.1", double)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "✗ Exercise 99.1 (double): your code raised KeyError: 'two'"
    assert re.fullmatch(r"  at /learner/cell_double_\d+\.py, line 2, in double: scale = \{\}\['two'\]", lines[1])
    assert lines[2] == '  hint: Multiply by two. More: hint("99.1").'
    assert result.status == "failed"


def test_an_exception_raised_by_numpy_points_at_the_learner_line(capsys):
    register_double()
    check("99.1", learner("def double(x):\n    return np.reshape(x, (5, 5))\n", "double"))
    out = capsys.readouterr().out
    assert out.startswith("✗ Exercise 99.1 (double): your code raised ValueError: cannot reshape array")
    assert "line 2, in double: return np.reshape(x, (5, 5))\n" in out and "Traceback" not in out


def test_a_bug_in_the_checker_is_an_internal_error_without_traceback(capsys):
    @exercise("99.2", "buggy", expects="fn(x)", nudge="none", hint="none")
    def _(fn):
        fn(1)
        return {}["missing"]

    result = check("99.2", learner("def fn(x):\n    return x\n", "fn"))
    out = flat(capsys.readouterr().out)
    assert out.startswith("✗ Exercise 99.2 (buggy): internal error: the check itself failed (KeyError: 'missing' at ")
    assert 'return {}["missing"]). This is a bug in the course, not in your code; please report it.' in out
    assert "Traceback" not in out and result.status == "failed"


# ---------------------------------------------------------------------------------------------- parameters


def test_a_call_of_check_that_does_not_fit_shows_the_usage(capsys):
    @exercise("99.3", "with options", expects="fn(x)", nudge="none", hint="none")
    def _(fn, images=None):
        return None

    assert not check("99.3")
    assert capsys.readouterr().out == (
        "✗ Exercise 99.3 (with options): missing a required argument: 'fn' — "
        'call it as check("99.3", fn)\n  (optional: images=)\n'
    )
    assert check("99.3", print, images=1)
    assert capsys.readouterr().out == "✓ Exercise 99.3 (with options): passed\n"


@pytest.mark.parametrize("source, complaint", [
    ("def double(x, factor):\n    return factor * x\n", "missing a required argument: 'factor'"),
    ("def double():\n    return 2\n", "too many positional arguments"),
])
def test_wrong_parameters_are_the_learners_mistake_naming_the_expected_ones(capsys, source, complaint):
    register_double()
    result = check("99.1", learner(source, "double"))
    out = flat(capsys.readouterr().out)
    assert not result and "internal error" not in out
    assert "the check calls double(x), which your double" in out and complaint in out
    assert "keep the parameters of the exercise" in out


def test_parameters_with_a_default_must_be_accepted_by_name(capsys):
    @exercise("99.2", "options", expects='draw(shape, *, seed=None, dtype="float32")', nudge="none", hint="none")
    def _(draw):
        return str(draw((2,), seed=0, dtype="float64"))

    assert check("99.2", learner("def draw(shape, *, seed=None, dtype='float32'):\n    return dtype\n", "draw"))
    assert check("99.2", learner("def draw(size, seed=0, dtype=None):\n    return dtype\n", "draw"))  # renamed
    assert not check("99.2", learner("def draw(shape, seed=None):\n    return 1\n", "draw"))
    assert "unexpected keyword argument 'dtype'" in flat(capsys.readouterr().out)


CLASS_STUB = """
    class Counter:
        def __init__(self, start=0): ...
        def step(self, amount): ...
"""


def register_counter():
    @exercise("99.4", "a counter", expects=CLASS_STUB, nudge="Add.", hint="none")
    def _(Counter):
        counter = Counter(start=1)
        expect_equal(counter.step(2), 3)


def test_a_class_is_checked_against_its_stub(capsys):
    register_counter()
    good = learner("class Counter:\n    def __init__(self, start=0):\n        self.n = start\n"
                   "    def step(self, amount):\n        self.n += amount\n        return self.n\n", "Counter")
    assert check("99.4", good)
    assert not check("99.4", good())
    assert "got a Counter: pass the class itself, check(..., Counter), not an instance of it" in flat(
        capsys.readouterr().out)
    assert not check("99.4", learner("class Counter:\n    def __init__(self, start=0):\n        pass\n", "Counter"))
    assert "your class Counter has no method step: the check calls step(self, amount)" in flat(capsys.readouterr().out)
    wrong = learner("class Counter:\n    def __init__(self, start=0):\n        pass\n"
                    "    def step(self):\n        return 1\n", "Counter")
    assert not check("99.4", wrong)
    assert "the check calls Counter.step(self, amount), which your Counter.step(self) cannot take" in flat(
        capsys.readouterr().out)
    assert not check("99.4", learner("def Counter(start=0):\n    return 1\n", "Counter"))
    assert "expected your class Counter, got a function" in flat(capsys.readouterr().out)


def test_a_class_where_a_function_is_expected_is_explained(capsys):
    register_double()
    assert not check("99.1", int)
    assert "expected your function double, got the class int: pass the function itself" in flat(capsys.readouterr().out)


def test_registration_errors_are_clear():
    with pytest.raises(LookupError, match='Exercise ids are strings like "1.1", not \'1\''):
        exercise("1", "bad id", expects="f(x)", nudge="none", hint="none")
    register_double()
    other = type(lambda: None)((lambda fn: None).__code__, {"__name__": "somewhere.else"})
    with pytest.raises(ValueError, match=f"exercise 99.1 is registered twice: in {__name__} and in somewhere.else"):
        exercise("99.1", "double", expects="double(x)", nudge="none", hint="none")(other)
    with pytest.raises(ValueError, match="the checker takes 1 argument.* but expects= declares 2"):
        exercise("99.5", "two", expects=("f(x)", "g(y)"), nudge="none", hint="none")(lambda f: None)


# ---------------------------------------------------------------------------------------------- hints


def test_hint_and_a_registered_solution(capsys):
    register_double()
    hint("99.1")
    solution("99.1")
    assert capsys.readouterr().out == (
        "Hint for exercise 99.1 (double): x + x works, and so does 2 * x.\n"
        'The reference code: solution("99.1").\n'
        'Reference solution of exercise 99.1 (double), in place of raise NotImplementedError("Exercise 99.1"):'
        "\n\nreturn 2 * x\n"
    )


def test_a_solution_given_as_a_function_shows_its_source(capsys):
    def reference(x):
        return 2 * x

    @exercise("99.4", "double again", expects="fn(x)", nudge="none", hint="none", solution=reference)
    def _(fn):
        return None

    solution("99.4")
    assert capsys.readouterr().out.endswith("\n\ndef reference(x):\n    return 2 * x\n")


def test_solution_falls_back_to_the_solutions_notebook(monkeypatch, capsys):
    monkeypatch.setattr(framework, "_SOLUTIONS_FOLDER", FIXTURE_SOLUTIONS)
    solution("0.1")
    assert capsys.readouterr().out.endswith("\n\nreturn images[labels == digit].mean(axis=0)\n")
    monkeypatch.setattr(framework, "_SOLUTIONS_FOLDER", FIXTURE_SOLUTIONS / "absent")
    solution("0.1")
    assert "No reference solution of exercise 0.1" in capsys.readouterr().out


def test_unknown_and_malformed_ids_are_explained(capsys):
    register_double()
    assert not check("99.5", print)
    assert capsys.readouterr().out == "✗ There is no exercise 99.5: chapter 99 has 99.1.\n"
    assert not check(1.1, print)
    assert capsys.readouterr().out == '✗ Exercise ids are strings like "1.1", not 1.1.\n'
    hint("98.1")
    assert capsys.readouterr().out == "There is no exercise 98.1: chapter 98 has none.\n"


# ---------------------------------------------------------------------------------------------- time limit


def test_an_endless_loop_is_stopped_at_the_time_limit_with_its_line(capsys, tmp_path, monkeypatch):
    register_double(time_limit=0.5)
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(framework.LOG_VARIABLE, str(log))
    looping = learner("def double(x):\n    while True:\n        try:\n            pass\n"
                      "        except Exception:\n            pass\n", "double")
    result = check("99.1", looping)
    out = capsys.readouterr().out
    assert result.status == "timed out" and not result
    assert flat(out).startswith("✗ Exercise 99.1 (double): stopped after 0.5 s, the time limit of this check: does a "
                                "loop in your code never end?")
    assert re.search(r"your code was running at /learner/cell_double_\d+\.py, line [2-6], in double", out)
    assert json.loads(log.read_text())["status"] == "timed out"
    assert check("99.1", learner("def double(x):\n    return 2 * x\n", "double"))  # no alarm left behind


def test_every_exercise_stops_before_the_progress_commands_cell_limit():
    for key, _ in all_exercises():
        assert 0 < framework._REGISTRY[key].time_limit < CELL_TIME_LIMIT, key


# ---------------------------------------------------------------------------------------------- unavailable functions


def register_sort():
    """Exercise 99.6, "write your own" topological sort: mg.topological_sort is unavailable, but the checker
    and minigraph keep using it."""

    @exercise("99.6", "sort", expects="topological_sort(fetches)", nudge="Inputs first.", hint="none",
              unavailable=[mg.topological_sort])
    def _(topological_sort):
        a = mg.placeholder("a", shape=(2,))
        y = a * a
        mg.Session().run(y, {a: np.ones(2, np.float32)})  # the Session sorts with the package's own function
        expect_equal([node.name for node in topological_sort([y])],
                     [node.name for node in mg.topological_sort([y])])
        return "1 graph"


OWN_SORT = """
def topological_sort(fetches):
    order, seen = [], set()
    def visit(node):
        if node not in seen:
            seen.add(node)
            for x in node.inputs:
                visit(x)
            order.append(node)
    for fetch in fetches:
        visit(fetch)
    return order
"""


@pytest.mark.parametrize("source", [
    "def topological_sort(fetches):\n    return mg.topological_sort(fetches)\n",
    "def topological_sort(fetches):\n    return mg.graph.topological_sort(fetches)\n",
    "from minigraph import topological_sort as package_sort\n"
    "def topological_sort(fetches):\n    return package_sort(fetches)\n",
    "def topological_sort(fetches):\n    try:\n        return mg.topological_sort(fetches)\n"
    "    except Exception:\n        return mg.topological_sort.__wrapped__(fetches)\n",
])
def test_the_package_function_is_unavailable_to_the_learners_code(capsys, source):
    register_sort()
    result = check("99.6", learner(source, "topological_sort"))
    out = flat(capsys.readouterr().out)
    assert not result
    assert ("your code called mg.topological_sort, minigraph's own version of what this exercise asks you to write; "
            "while this check runs, your code has to do without it") in out
    assert "in topological_sort: return" in out
    assert mg.topological_sort is mg.graph.topological_sort and not hasattr(mg.topological_sort, "__wrapped__")


def test_passing_the_package_function_itself_is_refused_before_running(capsys):
    register_sort()
    assert not check("99.6", mg.topological_sort)
    assert ("you passed mg.topological_sort itself, minigraph's own version of what this exercise asks you to "
            "write: write your own topological_sort") in flat(capsys.readouterr().out)
    assert check("99.6", learner(OWN_SORT, "topological_sort"))  # the checker's own calls went through


def test_a_method_can_be_unavailable_and_is_put_back(capsys):
    run = mg.Session.run

    @exercise("99.7", "evaluate", expects="evaluate(fetches, feed_dict)", nudge="none", hint="none",
              unavailable=[mg.Session.run])
    def _(evaluate):
        a = mg.placeholder("a", shape=())
        expected = mg.Session().run(a * 2, {a: 3.0})
        expect_close(evaluate([a * 2], {a: 3.0})[0], expected)

    assert not check("99.7", learner("def evaluate(fetches, feed_dict):\n"
                                     "    return mg.Session().run(fetches, feed_dict)\n", "evaluate"))
    assert "your code called mg.Session.run" in flat(capsys.readouterr().out)
    assert mg.Session.run is run


# ---------------------------------------------------------------------------------------------- safe comparisons


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def test_an_object_equal_to_everything_does_not_pass():
    for expected in ([1, 2], (3,), 2.5, "text", {"a": 1}, None, np.array([1.0, 2.0])):
        with pytest.raises(CheckFailure):
            expect_equal(AlwaysEqual(), expected)
        with pytest.raises(CheckFailure):
            expect_close(AlwaysEqual(), np.asarray(expected, dtype=object) if expected is None else 0.0)
    with pytest.raises(CheckFailure, match="should hold numbers, not objects"):
        expect_equal(np.array([AlwaysEqual(), AlwaysEqual()]), np.array([1, 2]))
    with pytest.raises(CheckFailure):
        expect_equal([AlwaysEqual()], [1])
    assert not same_value(AlwaysEqual(), 1) and not is_close(AlwaysEqual(), 1.0)


class LyingArray(np.ndarray):
    def __eq__(self, other):
        return np.ones(self.shape, bool)

    def __ne__(self, other):
        return np.zeros(self.shape, bool)


def test_an_array_subclass_cannot_lie_about_its_values():
    liar = np.array([0.0, 0.0]).view(LyingArray)
    with pytest.raises(CheckFailure):
        expect_equal(liar, np.array([1.0, 2.0]))
    with pytest.raises(CheckFailure):
        expect_close(liar, np.array([1.0, 2.0]))


def test_a_patched_numpy_cannot_make_a_wrong_answer_pass(monkeypatch, capsys):
    register_double()
    monkeypatch.setattr(np, "isclose", lambda a, b, **options: np.ones(np.broadcast(a, b).shape, bool))
    monkeypatch.setattr(np, "allclose", lambda *args, **options: True)
    monkeypatch.setattr(np, "array_equal", lambda *args, **options: True)
    assert not check("99.1", learner("def double(x):\n    return x\n", "double"))
    assert not check("1.1", lambda z: np.zeros_like(z))
    assert "softmax(z) differs from the expected value" in flat(capsys.readouterr().out)


def test_same_value_and_is_close_judge_by_the_expected_type():
    assert same_value([1, np.int64(2)], [1, 2]) and same_value((1.0,), (1,)) and same_value({"a": [1]}, {"a": [1]})
    assert not same_value((1, 2), [1, 2]) and not same_value(True, 1) and not same_value("1", 1)
    assert is_close(np.float32(0.1), 0.1, rtol=1e-6) and not is_close([1.0, 2.0], [1.0]) and not is_close("a", 1.0)


def test_expect_equal_names_a_type_difference():
    with pytest.raises(CheckFailure, match="the order is a tuple, expected a list") as failure:
        expect_equal((1, 2), [1, 2], what="the order")
    assert failure.value.report_lines() == [
        "  the order is a tuple, expected a list",
        "  expected: [1, 2]  (list)",
        "  got:      (1, 2)  (tuple)",
    ]
    expect_equal(np.array([3, 1]), [3, 1])
    with pytest.raises(CheckFailure, match="differs from the expected value at 1 of 2 positions; at index 1 it is 2"):
        expect_equal(np.array([3, 2]), [3, 1])


def test_expect_shape_accepts_unknown_sizes_and_abstract_dtypes():
    expect_shape(np.zeros((5, 10), np.float32), (None, 10), dtype=np.floating)
    with pytest.raises(CheckFailure, match=r"has shape \(5, 9\), expected \(None, 10\)"):
        expect_shape(np.zeros((5, 9)), (None, 10))
    with pytest.raises(CheckFailure, match="has dtype int64, expected float32"):
        expect_shape(np.zeros(3, np.int64), (3,), dtype="float32")
    with pytest.raises(CheckFailure, match="should be a numpy array of shape \\(3,\\), not a list"):
        expect_shape([0, 0, 0], (3,))


def test_expect_close_names_nan_and_non_numbers():
    with pytest.raises(CheckFailure, match="at index 0 it is nan, expected 1"):
        expect_close(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(CheckFailure, match="should hold numbers, not <U1"):
        expect_close(np.array(["a"]), np.array([1.0]))
    with pytest.raises(CheckFailure, match="the loss is 0.5, expected 0.25"):
        expect_close(0.5, 0.25, what="the loss")


def test_call_unchanged_shows_an_input_before_and_after_the_call():
    def shift(z, step=1.0):
        z -= step
        return z

    with pytest.raises(CheckFailure) as failure:
        call_unchanged(shift, np.array([1.0, 2.0]), step=1.0)
    assert failure.value.report_lines() == [
        "  your function changed its input z in place (e.g. z -= ...): compute a new array instead (z = z - ...)",
        "  input z before the call: [1. 2.]",
        "  input z after it:        [0. 1.]",
    ]
    assert call_unchanged(lambda z: z + 1, np.zeros(2)).tolist() == [1.0, 1.0]


def test_a_read_only_input_says_why(capsys):
    check("0.1", learner("def mean_digit(images, labels, digit):\n    images -= 1\n"
                         "    return images[labels == digit].mean(axis=0)\n", "mean_digit"))
    out = flat(capsys.readouterr().out)
    assert "your code raised ValueError: output array is read-only" in out
    assert "the check gives your function read-only arrays, so that changing an input fails at the line that does it" in out


def test_reports_hold_no_memory_address():
    failure = CheckFailure("wrong", got=object())
    assert failure.report_lines() == ["  wrong", "  got: <object object>"]


def test_a_dict_input_is_shown_one_entry_per_line():
    failure = CheckFailure("wrong", input={"z": np.arange(3), "axis": 1}, expected=2, got=3)
    assert failure.report_lines() == [
        "  wrong",
        "  input z:    [0 1 2]",
        "  input axis: 1",
        "  expected:   2",
        "  got:        3",
    ]


# ---------------------------------------------------------------------------------------------- the log and the registry


def test_each_check_appends_a_json_line_to_the_log(tmp_path, monkeypatch, capsys):
    register_double()
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(framework.LOG_VARIABLE, str(log))
    check("99.1", learner('def double(x):\n    raise NotImplementedError("Exercise 99.1")\n', "double"))
    check("99.1", learner("def double(x):\n    return 2 * x\n", "double"))
    check("99.9", print)  # unknown: not logged
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries == [
        {"exercise": "99.1", "title": "double", "status": "not implemented"},
        {"exercise": "99.1", "title": "double", "status": "passed"},
    ]


def test_the_result_is_silent_in_jupyter_and_readable_elsewhere(capsys):
    register_double()
    result = check("99.1", learner("def double(x):\n    return 2 * x\n", "double"))
    assert result._ipython_display_() is None
    assert repr(result) == "<check of exercise 99.1: passed>"


def test_all_exercises_lists_the_chapters_in_numeric_order():
    for key in ("99.10", "99.2"):
        exercise(key, f"exercise {key}", expects="fn(x)", nudge="none", hint="none")(lambda fn: None)
    listed = all_exercises()
    assert ("0.1", "the mean image of a digit") in listed
    assert [key for key, _ in listed][-2:] == ["99.2", "99.10"]


# ---------------------------------------------------------------------------------------------- chapter 00


def mean_digit_solution(images, labels, digit):
    return images[labels == digit].mean(axis=0)


def test_warm_up_passes_on_synthetic_and_given_data(capsys):
    rng = np.random.default_rng(1)
    images, labels = rng.random((200, 784), dtype=np.float32), np.arange(200) % 10
    assert check("0.1", mean_digit_solution)
    assert check("0.1", mean_digit_solution, images=images, labels=labels)
    assert capsys.readouterr().out.splitlines() == [
        "✓ Exercise 0.1 (the mean image of a digit): passed — 3 cases",
        "✓ Exercise 0.1 (the mean image of a digit): passed — 3 cases, and all 10 digits of the 200 images",
        "  you passed",
    ]


def test_warm_up_catches_the_usual_mistakes(capsys):
    check("0.1", lambda images, labels, digit: images[labels == digit].mean(axis=1))
    assert "the mean image of digit 7 has shape (2,), expected (4,)" in capsys.readouterr().out
    check("0.1", lambda images, labels, digit: images.mean(axis=0))
    assert "the mean image of digit 7 differs from the expected value at 4 of 4 positions" in flat(
        capsys.readouterr().out)
    check("0.1", lambda images, labels: images.mean(axis=0))
    assert "the check calls mean_digit(images, labels, digit)" in flat(capsys.readouterr().out)
    check("0.1", mean_digit_solution, images=np.zeros((3, 4)), labels=np.arange(3))
    assert "every digit 0-9: got 3 labels for 3 images" in flat(capsys.readouterr().out)


def test_no_exercise_passes_with_the_package_function_it_makes_unavailable(capsys):
    """Each function an exercise makes unavailable, passed in place of the learner's own, is refused."""
    for key, _ in all_exercises():
        declared = framework._REGISTRY[key]
        for function in declared.unavailable:
            refused = []
            for position, stub in enumerate(declared.stubs):
                if not stub.is_class:
                    arguments = [print] * len(declared.stubs)
                    arguments[position] = function
                    assert not check(key, *arguments), (key, function)
                    refused.append("minigraph's own version of what this exercise asks you" in flat(capsys.readouterr().out))
            assert any(refused) or all(stub.is_class for stub in declared.stubs), (key, function)


def test_the_documented_example_works_as_documented(capsys):
    """The module documentation's example, declared as exercise 99.1: the pattern chapters copy."""
    documentation = framework.__doc__
    start = documentation.index("    import minigraph as mg\n")
    example = textwrap.dedent(documentation[start:documentation.index("What each part does:")])
    namespace = {"__name__": "tests.documented_example"}
    exec(example.replace("from .framework", "from minigraph.checks.framework").replace('"2.1"', '"99.1"'), namespace)
    assert check("99.1", learner(OWN_SORT, "topological_sort"))
    assert not check("99.1", mg.topological_sort)
    assert not check("99.1", learner("def topological_sort(fetches):\n    return fetches\n", "topological_sort"))
    assert "the number of nodes in the order is wrong" in flat(capsys.readouterr().out)


def test_a_function_imported_elsewhere_is_named_by_its_own_module():
    """mg.parallel.mnist imports mg.parallel.mpi's ring_allreduce: whichever is imported, a message names the
    function where it is defined (equally short names, before: the first in alphabetical order)."""
    import minigraph.parallel.mnist as mnist  # noqa: F401 (imported for its name of the function)
    from minigraph.checks.limits import public_name
    from minigraph.parallel import mpi

    assert mnist.ring_allreduce is mpi.ring_allreduce
    assert public_name(mpi.ring_allreduce) == "mg.parallel.mpi.ring_allreduce"
    assert public_name(mg.topological_sort) == "mg.topological_sort"  # the shortest name still wins
