"""Comparing what the learner's code gives with what it should give, in ways the learner's objects cannot fool.

Every decision goes through numpy functions this module captured when it was imported, applied to plain
arrays (``np.asarray`` drops an array subclass): a notebook that replaces ``np.isclose`` with something
lenient, or returns an object whose ``==`` is always true, still fails. Plain values (numbers, strings,
lists, tuples, dicts) are compared by type first, then item by item.
"""

import contextlib
import inspect
import numbers

import numpy as np

from .report import format_value, labelled, prose, raised_in_learner_code, type_differences

_asarray, _isclose, _array_equal = np.asarray, np.isclose, np.array_equal
_issubdtype, _copy = np.issubdtype, np.copy


class _NotGiven:
    def __repr__(self):
        return "not given"


NOT_GIVEN = _NotGiven()


class CheckFailure(Exception):
    """A wrong answer: what is wrong, and optionally the input, the expected and the obtained value.

    ``input`` may be a dict, shown one entry per line (``input={"z": z, "axis": 1}``); a :class:`Text`
    shows a description as it is (``input=Text("train(...) on MNIST")``).
    """

    def __init__(self, message, input=NOT_GIVEN, expected=NOT_GIVEN, got=NOT_GIVEN):
        super().__init__(message)
        self.message, self.input, self.expected, self.got = message, input, expected, got

    def report_lines(self):
        """The failure as indented report lines; expected and got show their types where these differ."""
        entries = []
        inputs = self.input if isinstance(self.input, dict) else {"": self.input}
        for name, value in inputs.items():
            if value is not NOT_GIVEN:
                entries.append((f"input {name}".strip(), format_value(value)))
        types = ("", "")
        if self.expected is not NOT_GIVEN and self.got is not NOT_GIVEN:
            types = type_differences(self.expected, self.got)
        for label, value, kind in (("expected", self.expected, types[0]), ("got", self.got, types[1])):
            if value is not NOT_GIVEN:
                entries.append((label, format_value(value, kind)))
        return prose(self.message) + (labelled(entries) if entries else [])


@contextlib.contextmanager
def reported_as_failure(checker_file, wording, input=NOT_GIVEN, catch=Exception):
    """Within the block, an error of the types ``catch`` becomes a :class:`CheckFailure` whose message is
    ``wording(error)`` — unless the learner's code raised it (:func:`~.report.raised_in_learner_code`): the
    framework reports that one as it is, showing the learner's line."""
    try:
        yield
    except catch as error:
        if raised_in_learner_code(error, checker_file):
            raise
        raise CheckFailure(wording(error), input=input) from None


def expect_shape(got, shape, *, dtype=None, input=NOT_GIVEN, what="the result"):
    """Fail unless ``got`` is a numpy array of ``shape`` (None matches any size) and, if given, ``dtype``.

    ``dtype`` may be abstract: ``np.floating`` accepts float32 and float64.
    """
    _expect_not_none(got, input, what)
    if not isinstance(got, np.ndarray):
        raise CheckFailure(f"{what} should be a numpy array of shape {tuple(shape)}, not a {type(got).__name__}",
                           input=input, got=got)
    fits = len(got.shape) == len(shape) and all(want in (None, size) for want, size in zip(shape, got.shape))
    if not fits:
        raise CheckFailure(f"{what} has shape {got.shape}, expected {tuple(shape)}", input=input, got=got)
    if dtype is not None and not _issubdtype(got.dtype, dtype):
        wanted = np.dtype(dtype).name if isinstance(dtype, (str, np.dtype)) else dtype.__name__
        raise CheckFailure(f"{what} has dtype {got.dtype}, expected {wanted}", input=input, got=got)


def expect_close(got, expected, *, input=NOT_GIVEN, rtol=1e-5, atol=1e-8, what="the result"):
    """Fail unless ``got`` has the shape of ``expected`` and |got - expected| <= atol + rtol |expected|.

    NaN matches NaN; a NaN or inf that should not be there is named in the message.
    """
    expected = _asarray(expected)
    got_array = _as_numeric(got, expected, input, what)
    close = _isclose(got_array, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        tolerance = f"(tolerance: rtol={rtol:g}, atol={atol:g})"
        raise CheckFailure(f"{_differences(got_array, expected, ~close, what)} {tolerance}", input=input,
                           expected=expected, got=got)


def expect_equal(got, expected, *, input=NOT_GIVEN, what="the result"):
    """Fail unless ``got`` equals ``expected``: element by element for arrays; for plain values (numbers,
    strings, lists, tuples, dicts, None) of the same type, item by item; any other object must be ``expected``
    itself."""
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
        expected = _asarray(expected)
        got_array = _as_array(got, expected, input, what)
        if got_array.dtype == object and expected.dtype != object:
            raise CheckFailure(f"{what} should hold numbers, not objects", input=input, expected=expected, got=got)
        different = got_array != expected
        if different.any():
            raise CheckFailure(_differences(got_array, expected, different, what), input=input, expected=expected,
                               got=got)
        return
    if not same_value(got, expected):
        kinds = _plain_kind(expected), _plain_kind(got)
        message = f"{what} is a {kinds[1]}, expected a {kinds[0]}" if kinds[0] != kinds[1] else f"{what} is wrong"
        raise CheckFailure(message, input=input, expected=expected, got=got)


def is_close(got, expected, *, rtol=1e-5, atol=1e-8):
    """Whether ``got`` is numbers of ``expected``'s shape within the tolerance of :func:`expect_close`: for a
    checker that decides with its own message."""
    expected = _asarray(expected)
    try:
        got_array = _asarray(got)
    except (TypeError, ValueError):
        return False
    numeric = _issubdtype(got_array.dtype, np.number) or got_array.dtype == bool
    return (numeric and got_array.shape == expected.shape
            and bool(_isclose(got_array, expected, rtol=rtol, atol=atol, equal_nan=True).all()))


def same_value(got, expected):
    """Whether ``got`` equals the plain value ``expected``, judged by ``expected``'s type, never by ``got``'s ``==``."""
    if isinstance(expected, (bool, np.bool_)) or expected is None:
        return got is expected or (isinstance(got, np.bool_) and bool(got) is expected)
    if isinstance(expected, (numbers.Number, np.number)):
        return (isinstance(got, (numbers.Number, np.number)) and not isinstance(got, (bool, np.bool_))
                and _plain_number(got) == _plain_number(expected))
    if isinstance(expected, str):
        return isinstance(got, str) and str.__eq__(str(got), str(expected))
    if isinstance(expected, (list, tuple)):
        return (type(got) is type(expected) and len(got) == len(expected)
                and all(same_value(g, e) for g, e in zip(got, expected)))
    if isinstance(expected, dict):
        return (type(got) is dict and len(got) == len(expected)
                and all(key in got and same_value(got[key], value) for key, value in expected.items()))
    return got is expected


def _plain_number(value):
    return value.item() if isinstance(value, np.generic) else value


def _plain_kind(value):
    return "number" if isinstance(value, (numbers.Number, np.number)) and not isinstance(value, bool) else (
        type(value).__name__)


def call_unchanged(function, *args, **kwargs):
    """``function(*args, **kwargs)``, failing if it changed an array argument in place; the report shows the
    argument as it was before the call and as the call left it."""
    arguments = _named_arguments(function, args, kwargs)
    before = {name: _copy(value) for name, value in arguments.items() if isinstance(value, np.ndarray)}
    result = function(*args, **kwargs)
    for name, copy in before.items():
        if not _array_equal(arguments[name], copy, equal_nan=copy.dtype.kind in "fc"):
            raise CheckFailure(f"your function changed its input {name} in place (e.g. {name} -= ...): compute a "
                               f"new array instead ({name} = {name} - ...)",
                               input={f"{name} before the call": copy, f"{name} after it": _copy(arguments[name])})
    return result


def _named_arguments(function, args, kwargs):
    """The arguments by the learner's parameter names (by position when the signature is unknown)."""
    try:
        return dict(inspect.signature(function).bind(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return {**{f"argument {i + 1}": value for i, value in enumerate(args)}, **kwargs}


def read_only(array):
    """A view of ``array`` that cannot be written to: a function that changes its input fails at the line
    that does it (the report then explains why the array is read-only)."""
    view = _asarray(array).view()
    view.flags.writeable = False
    return view


def _expect_not_none(got, input, what, expected=NOT_GIVEN):
    if got is None:
        raise CheckFailure(f"{what} is None: does your function end with a return statement?", input=input,
                           expected=expected, got=None)


def _as_array(got, expected, input, what):
    _expect_not_none(got, input, what, expected)
    got_array = _asarray(got)
    if got_array.shape != expected.shape:
        raise CheckFailure(f"{what} has shape {got_array.shape}, expected {expected.shape}", input=input,
                           expected=expected, got=got)
    return got_array


def _as_numeric(got, expected, input, what):
    try:
        got_array = _as_array(got, expected, input, what)
    except (TypeError, ValueError):  # a ragged list or an object numpy cannot convert
        raise CheckFailure(f"{what} should be an array, not a {type(got).__name__}", input=input, expected=expected,
                           got=got) from None
    if not (_issubdtype(got_array.dtype, np.number) or got_array.dtype == bool):
        raise CheckFailure(f"{what} should hold numbers, not {got_array.dtype}", input=input, expected=expected,
                           got=got)
    return got_array


def _differences(got, expected, wrong, what):
    """Where ``got`` and ``expected`` differ (``wrong`` marks the positions), worst position first."""
    if got.ndim == 0:
        return f"{what} is {format_value(got.item())}, expected {format_value(expected.item())}"
    gap = np.abs(got.astype(float) - expected.astype(float))
    worst = np.unravel_index(np.argmax(np.where(wrong, np.nan_to_num(gap, nan=np.inf), -1.0)), got.shape)
    index = tuple(int(i) for i in worst)
    return (f"{what} differs from the expected value at {int(wrong.sum())} of {got.size} positions; "
            f"at index {index[0] if len(index) == 1 else index} it is {format_value(got[worst])}, "
            f"expected {format_value(expected[worst])}")
