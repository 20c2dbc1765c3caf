"""How a check shows values and code locations to the learner: compact, rounded and deterministic."""

import linecache
import re
import sys
import sysconfig
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


def format_value(value, with_type=False):
    """A short, deterministic text for ``value``: arrays rounded and summarized, no memory addresses.

    The type (an array's shape and dtype) follows when ``with_type`` is true or the array is summarized.
    """
    if isinstance(value, np.ndarray):
        text = np.array2string(value, separator=" ", **_ARRAY_STYLE)
        with_type = with_type or value.size > _ARRAY_STYLE["threshold"]
    else:
        text = _format_object(value)
    return f"{text}  ({describe_type(value)})" if with_type and value is not None else text


def _format_object(value):
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


def describe_type(value):
    """``"shape (2, 3), float32"`` for an array, else the type's name (``"list"``, ``"NoneType"``)."""
    if isinstance(value, np.ndarray):
        return f"shape {value.shape}, {value.dtype}"
    return type(value).__name__


def labelled(entries):
    """Report lines ``  label: text`` for ``(label, text)`` pairs, the texts aligned in one column."""
    width = max(len(label) for label, _ in entries) + 2
    lines = []
    for label, text in entries:
        continuation = "\n" + " " * (2 + width)
        lines.append(f"  {label + ':':<{width}}" + continuation.join(text.split("\n")))
    return lines


def learner_frame(tb, checker_file):
    """The innermost frame of ``tb`` in the learner's code, as ``(filename, lineno, function)``, or None.

    Learner code is any file outside the Python installation, its packages, minigraph, and the file
    that defines the checker.
    """
    found = None
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        if filename != checker_file and _is_learner_file(filename):
            found = (filename, lineno, frame.f_code.co_name)
    return found


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


def _is_learner_file(filename):
    if filename.startswith("<"):
        return not filename.startswith("<frozen")
    path = Path(filename).resolve()
    return not any(path.is_relative_to(root) for root in _LIBRARY_ROOTS)
