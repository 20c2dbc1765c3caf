"""The learner-facing checks: what check(), hint() and solution() print and return, and the expect helpers."""

import json
import linecache
from pathlib import Path

import numpy as np
import pytest

from minigraph.checks import CheckFailure, all_exercises, check, framework, hint, solution
from minigraph.checks.framework import Passed, exercise, expect_close, expect_equal, expect_shape

FIXTURE_SOLUTIONS = Path(__file__).parent / "fixtures" / "solutions"


def learner(source, name):
    """Define ``name`` from ``source`` as if typed in a notebook cell: its own file name, lines in linecache."""
    filename = f"/learner/cell_{name}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"np": np}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    """A copy of the full registry, so that the exercises registered by a test vanish after it."""
    all_exercises()  # imports every chapter module, registering its exercises
    monkeypatch.setattr(framework, "_REGISTRY", dict(framework._REGISTRY))
    monkeypatch.delenv(framework.LOG_VARIABLE, raising=False)


def register_double():
    """Exercise 99.1: ``double(x)`` returns 2 x."""

    @exercise("99.1", "double", hint="Multiply by two.", solution="return 2 * x")
    def _(double):
        for x in (np.array([1.0, 2.0]), np.array([[0.5, -1.0]]), np.float64(3.0)):
            expect_close(double(x), 2 * x, input=x)
        return "3 cases, including a scalar"


def test_a_correct_solution_passes_with_one_line(capsys):
    register_double()
    result = check("99.1", learner("def double(x):\n    return x + x\n", "double"))
    assert capsys.readouterr().out == "✓ Exercise 99.1 (double): passed — 3 cases, including a scalar\n"
    assert result and result.status == "passed" and result.exercise == "99.1"


def test_a_checker_hands_a_value_back_only_when_passed(capsys):
    @exercise("99.2", "train", hint="Return the history.")
    def _(train):
        history = train()
        expect_equal(len(history["epoch"]), 2, input="train()", what="number of epochs")
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
    assert out.startswith("… Exercise 99.1 (double): not implemented yet — replace the line raise")
    assert "Traceback" not in out and len(out.splitlines()) == 1
    assert not result and result.status == "not implemented"


def test_a_stub_of_another_exercise_is_named(capsys):
    register_double()
    result = check("99.1", learner('def double(x):\n    raise NotImplementedError("Exercise 99.7")\n', "double"))
    assert capsys.readouterr().out.endswith("not implemented yet — it needs exercise 99.7 first\n")
    assert result.status == "not implemented"


def test_a_wrong_answer_shows_input_expected_got_and_hint(capsys):
    register_double()
    result = check("99.1", learner("def double(x):\n    return x * x\n", "double"))
    assert capsys.readouterr().out.splitlines() == [
        "✗ Exercise 99.1 (double): failed",
        "  the result differs from the expected value at 1 of 2 positions; at index 0 it is 1, expected 2 "
        "(tolerance: rtol=1e-05, atol=1e-08)",
        "  input:    [1. 2.]",
        "  expected: [2. 4.]",
        "  got:      [1. 4.]",
        "  hint: Multiply by two.",
    ]
    assert result.status == "failed" and not result


def test_a_wrong_shape_and_dtype_are_named(capsys):
    register_double()
    check("99.1", learner("def double(x):\n    return np.ravel(2 * x).astype(np.float32)\n", "double"))
    out = capsys.readouterr().out
    assert "  the result has shape (2,), expected (1, 2)" in out
    assert "  expected: [[ 1. -2.]]  (shape (1, 2), float64)" in out
    assert "  got:      [ 1. -2.]  (shape (2,), float32)" in out


def test_returning_none_asks_for_a_return_statement(capsys):
    register_double()
    check("99.1", learner("def double(x):\n    y = 2 * x\n", "double"))
    out = capsys.readouterr().out
    assert "the result is None: does your function end with a return statement?" in out
    assert "  got:      None\n" in out


def test_an_exception_in_learner_code_shows_its_line_and_the_hint(capsys):
    register_double()
    result = check("99.1", learner("def double(x):\n    scale = {}['two']\n    return scale * x\n", "double"))
    assert capsys.readouterr().out.splitlines() == [
        "✗ Exercise 99.1 (double): your code raised KeyError: 'two'",
        "  at /learner/cell_double.py, line 2, in double: scale = {}['two']",
        "  hint: Multiply by two.",
    ]
    assert result.status == "failed"


def test_an_exception_raised_by_numpy_points_at_the_learner_line(capsys):
    register_double()
    check("99.1", learner("def double(x):\n    return np.reshape(x, (5, 5))\n", "double"))
    out = capsys.readouterr().out
    assert out.startswith("✗ Exercise 99.1 (double): your code raised ValueError: cannot reshape array")
    assert "  at /learner/cell_double.py, line 2, in double: return np.reshape(x, (5, 5))\n" in out
    assert "Traceback" not in out


def test_a_bug_in_the_checker_is_an_internal_error_without_traceback(capsys):
    @exercise("99.2", "buggy", hint="none")
    def _(fn):
        fn(1)
        return {}["missing"]

    result = check("99.2", learner("def fn(x):\n    return x\n", "fn"))
    out = capsys.readouterr().out
    assert out.startswith("✗ Exercise 99.2 (buggy): internal error: the check itself failed (KeyError: 'missing' at ")
    assert 'return {}["missing"]). This is a bug in the course, not in your code; please report it.' in out
    assert "Traceback" not in out and len(out.splitlines()) == 1
    assert result.status == "failed"


def test_a_call_that_does_not_fit_the_checker_shows_the_usage(capsys):
    @exercise("99.3", "with options", hint="none")
    def _(fn, images=None):
        return None

    assert not check("99.3")
    assert capsys.readouterr().out == (
        "✗ Exercise 99.3 (with options): missing a required argument: 'fn' — "
        'call it as check("99.3", fn) (optional: images=)\n'
    )
    assert check("99.3", print, images=1)
    assert capsys.readouterr().out == "✓ Exercise 99.3 (with options): passed\n"


def test_unknown_and_malformed_ids_are_explained(capsys):
    register_double()
    assert not check("99.5", print)
    assert capsys.readouterr().out == "✗ There is no exercise 99.5: chapter 99 has 99.1.\n"
    assert not check(1.1, print)
    assert capsys.readouterr().out == '✗ Exercise ids are strings like "1.1", not 1.1.\n'
    hint("98.1")
    assert capsys.readouterr().out == "There is no exercise 98.1: chapter 98 has none.\n"


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


def test_hint_and_a_registered_solution(capsys):
    register_double()
    hint("99.1")
    solution("99.1")
    assert capsys.readouterr().out == (
        "Hint for exercise 99.1 (double): Multiply by two.\n"
        'Reference solution of exercise 99.1 (double), in place of raise NotImplementedError("Exercise 99.1"):'
        "\n\nreturn 2 * x\n"
    )


def test_a_solution_given_as_a_function_shows_its_source(capsys):
    def reference(x):
        return 2 * x

    @exercise("99.4", "double again", hint="none", solution=reference)
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


def test_all_exercises_lists_the_chapters_in_numeric_order():
    for key in ("99.10", "99.2"):
        exercise(key, f"exercise {key}", hint="none")(lambda fn: None)
    listed = all_exercises()
    assert ("0.1", "the mean image of a digit") in listed
    assert [key for key, _ in listed][-2:] == ["99.2", "99.10"]


def test_registration_errors_are_clear():
    with pytest.raises(LookupError, match='Exercise ids are strings like "1.1", not \'1\''):
        exercise("1", "bad id", hint="none")
    register_double()
    other = type(lambda: None)((lambda fn: None).__code__, {"__name__": "somewhere.else"})
    with pytest.raises(ValueError, match=f"exercise 99.1 is registered twice: in {__name__} and in somewhere.else"):
        exercise("99.1", "double", hint="none")(other)


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


def mean_digit_solution(images, labels, digit):
    return images[labels == digit].mean(axis=0)


def test_warm_up_passes_on_synthetic_and_given_data(capsys):
    rng = np.random.default_rng(1)
    images, labels = rng.random((200, 784), dtype=np.float32), np.arange(200) % 10
    assert check("0.1", mean_digit_solution)
    assert check("0.1", mean_digit_solution, images=images, labels=labels)
    assert capsys.readouterr().out.splitlines() == [
        "✓ Exercise 0.1 (the mean image of a digit): passed — 3 cases",
        "✓ Exercise 0.1 (the mean image of a digit): passed — 3 cases, "
        "and all 10 digits of the 200 images you passed",
    ]


def test_warm_up_catches_the_usual_mistakes(capsys):
    check("0.1", lambda images, labels, digit: images[labels == digit].mean(axis=1))
    assert "the mean image of digit 7 has shape (2,), expected (4,)" in capsys.readouterr().out
    check("0.1", lambda images, labels, digit: images.mean(axis=0))
    assert "the mean image of digit 7 differs from the expected value at 4 of 4 positions" in capsys.readouterr().out

    def in_place(images, labels, digit):
        images -= 1
        return images[labels == digit].mean(axis=0)

    check("0.1", in_place)
    assert "your code raised ValueError: output array is read-only" in capsys.readouterr().out
    check("0.1", mean_digit_solution, images=np.zeros((3, 4)), labels=np.arange(3))
    assert "every digit 0-9: got 3 labels for 3 images" in capsys.readouterr().out
