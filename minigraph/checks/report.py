"""How a check shows itself to the learner: values (compact, rounded, deterministic), code locations,
and the report, as plain text (terminals, nbval) and as HTML (JupyterLab) holding the same text."""

import functools
import html
import linecache
import numbers
import re
import sys
import sysconfig
import textwrap
import traceback
from pathlib import Path

import numpy as np

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the minigraph package
_LIBRARY_ROOTS = tuple(
    {_PACKAGE_ROOT} | {Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "purelib", "platlib")}
)
_ARRAY_STYLE = dict(precision=5, threshold=24, edgeitems=3, max_line_width=88, suppress_small=True)
_MAX_ITEMS = 12  # items of a list, tuple or dict shown before "..."
_MAX_REPR = 200  # characters of any other object's repr
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
WIDTH = 100  # plain text: prose lines of a report are wrapped, between words, to this many characters


class Text(str):
    """A description shown as it is, without quotes or a type: ``input=Text("np.random.default_rng(3)")``."""

    def __repr__(self):
        return str(self)


def format_value(value, with_type=""):
    """A short, deterministic text for ``value``: arrays rounded and summarized, no memory addresses.

    ``with_type`` is appended in parentheses (e.g. ``"shape (2,), float32"``); a summarized array always
    shows its shape, which its ``...`` hides.
    """
    if isinstance(value, np.ndarray):
        text = np.array2string(value, separator=" ", **_ARRAY_STYLE)
        if value.size > _ARRAY_STYLE["threshold"] and "shape" not in with_type:
            with_type = ", ".join(filter(None, [f"shape {value.shape}", with_type]))
    else:
        text = _format_object(value)
    return f"{text}  ({with_type})" if with_type else text


def _format_object(value):
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, np.generic):
        return _format_object(value.item())
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        items = [format_value(item) for item in value[:_MAX_ITEMS]] + ["..."] * (len(value) > _MAX_ITEMS)
        text = ", ".join(items) + ("," if isinstance(value, tuple) and len(value) == 1 else "")
        return f"[{text}]" if isinstance(value, list) else f"({text})"
    if isinstance(value, dict):
        items = [f"{format_value(k)}: {format_value(v)}" for k, v in list(value.items())[:_MAX_ITEMS]]
        return "{" + ", ".join(items + ["..."] * (len(value) > _MAX_ITEMS)) + "}"
    text = _ADDRESS.sub("", repr(value))
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def type_differences(expected, got):
    """What tells ``expected`` and ``got`` apart besides their values, as two texts (empty when nothing):
    the shapes and dtypes of two arrays where they differ, else the types' names where they differ."""
    if isinstance(expected, Text) or isinstance(got, Text) or expected is None or got is None:
        return "", ""
    expected, got = (value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
                     for value in (expected, got))
    if isinstance(expected, np.ndarray) and isinstance(got, np.ndarray):
        parts = [], []
        if expected.shape != got.shape:
            parts[0].append(f"shape {expected.shape}")
            parts[1].append(f"shape {got.shape}")
        if expected.dtype != got.dtype:
            parts[0].append(str(expected.dtype))
            parts[1].append(str(got.dtype))
        return ", ".join(parts[0]), ", ".join(parts[1])
    kinds = _kind(expected), _kind(got)
    return kinds if kinds[0] != kinds[1] else ("", "")


def _kind(value):
    if isinstance(value, np.ndarray):
        return f"shape {value.shape}, {value.dtype}"
    if isinstance(value, (numbers.Number, np.number)) and not isinstance(value, (bool, np.bool_)):
        return "a number"  # a float32 scalar and a float are shown alike: only their values differ
    return type(value).__name__


def labelled(entries):
    """Report lines ``  label: text`` for ``(label, text)`` pairs, the texts aligned in one column."""
    width = max(len(label) for label, _ in entries) + 2
    lines = []
    for label, text in entries:
        continuation = "\n" + " " * (2 + width)
        lines.append(f"  {label + ':':<{width}}" + continuation.join(text.split("\n")))
    return lines


class Prose(str):
    """A line of a report that is prose, with its indentation: wrapped between words, at :data:`WIDTH` columns
    in plain text (its continuation lines indented two more spaces) and at the window's width in JupyterLab."""


def prose(text, indent="  "):
    """``text`` as :class:`Prose` lines, one per paragraph (its line breaks), each starting with ``indent``."""
    return [Prose(indent + paragraph) for paragraph in text.split("\n")]


def plain_lines(line):
    """The lines of plain text that show ``line``: a :class:`Prose` line wrapped, any other as it is."""
    if not isinstance(line, Prose):
        return [line]
    indent = " " * (len(line) - len(line.lstrip(" ")))
    return textwrap.wrap(line, WIDTH, subsequent_indent=indent + "  ", break_long_words=False,
                         break_on_hyphens=False) or [line.rstrip()]


# ---------------------------------------------------------------------------------------------- the report

_SYMBOLS = {"passed": "✓", "failed": "✗", "timed out": "✗", "not implemented": "…"}
_COLOURS = {"passed": "#15803d", "failed": "#b91c1c", "timed out": "#b91c1c", "not implemented": "#a16207"}
_BOX = ("font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,13px);"
        "line-height:1.4;padding:0.3em 0.6em;overflow-x:auto;border-left:0.3em solid ")


class Report:
    """The report of one check: its status, a heading (after the status's symbol) and indented lines.

    Plain text for terminals and nbval (prose wrapped at :data:`WIDTH` columns); in JupyterLab the same lines in
    a box whose colour and symbol show the status (green ✓ passed, red ✗ failed or timed out, amber … not
    implemented), the prose wrapped between words at the window's width.
    """

    def __init__(self, status, heading, lines=()):
        self.status = status
        self.lines = [Prose(f"{_SYMBOLS[status]} {heading}"), *lines]
        self.text = "\n".join(text for line in self.lines for text in plain_lines(line))

    def __repr__(self):
        return self.text

    def _repr_mimebundle_(self, include=None, exclude=None):
        colour = _COLOURS[self.status]
        rows = []
        for number, line in enumerate(self.lines):
            if isinstance(line, Prose):
                indent = len(line) - len(line.lstrip(" "))
                content = html.escape(line.strip(), quote=False)
                if number == 0:
                    content = f'<span style="color:{colour};font-weight:bold">{content}</span>'
                rows.append(f'<div style="padding-left:{indent + 2}ch;text-indent:-2ch">{content}</div>')
            else:
                rows += [f'<div style="white-space:pre">{html.escape(part, quote=False)}</div>'
                         for part in line.split("\n")]
        return {"text/plain": self.text, "text/html": f'<div style="{_BOX}{colour}">{"".join(rows)}</div>'}


def show(report):
    """Display ``report`` as rich output inside IPython (JupyterLab), else print its text."""
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:
        from IPython.display import display

        display(report)
    else:
        print(report.text)


# ---------------------------------------------------------------------------------------------- code locations


def learner_frame(tb, checker_file):
    """The innermost frame of ``tb`` in the learner's code, as ``(filename, lineno, function)``, or None.

    Learner code is any file outside the Python installation, its packages, minigraph, and the file
    that defines the checker.
    """
    found = None
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        if filename != checker_file and is_learner_file(filename):
            found = (filename, lineno, frame.f_code.co_name)
    return found


def raised_in_learner_code(error, checker_file):
    """Whether ``error`` is for the framework to report as it is — a stub's NotImplementedError, or an error
    whose traceback passes through the learner's code, whose line the report then shows — rather than for
    the checker to word as a failure of what the learner's code returned."""
    return isinstance(error, NotImplementedError) or learner_frame(error.__traceback__, checker_file) is not None


def innermost_frame(tb):
    """The innermost frame of ``tb`` as ``(filename, lineno, function)``."""
    *_, (frame, lineno) = traceback.walk_tb(tb)
    return frame.f_code.co_filename, lineno, frame.f_code.co_name


def format_location(filename, lineno, function):
    """``Cell In[3], line 4, in f: return x + 1`` — IPython's cell name when the code came from a cell."""
    source_line = linecache.getline(filename, lineno).strip()
    where = f"{_display_name(filename)}, line {lineno}"
    where += f", in {function}" if function != "<module>" else ""
    return f"{where}: {source_line}" if source_line else where


def _display_name(filename):
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    cell = shell.compile.format_code_name(filename) if shell else None
    if cell:
        return " ".join(cell)
    path = Path(filename)
    if path.is_absolute() and path.resolve().is_relative_to(_PACKAGE_ROOT.parent):
        return path.resolve().relative_to(_PACKAGE_ROOT.parent).as_posix()
    return filename


@functools.lru_cache(maxsize=4096)
def is_learner_file(filename):
    """Whether code from ``filename`` is the learner's: not Python's, an installed package's or minigraph's."""
    if filename.startswith("<"):
        return not filename.startswith("<frozen")
    path = Path(filename).resolve()
    return not any(path.is_relative_to(root) for root in _LIBRARY_ROOTS)
