"""The default pipeline: the passes one after the other, with a report of what each one did."""

from collections import Counter

from ..graph import Source, topological_sort
from .core import check_fetches, check_result
from .cse import eliminate_common_subexpressions
from .dead_code import eliminate_dead_code
from .folding import fold_constants
from .fusion import FusedElementwise, fuse_elementwise
from .algebra import simplify

# Dead code first (less to look at); folding before simplify (``x * (2 - 1)`` needs ``2 - 1`` folded to
# match ``x * 1``); CSE after both (their results may repeat each other), and before fusion, which must
# see how many consumers each value really has.
DEFAULT_PASSES = (eliminate_dead_code, fold_constants, simplify, eliminate_common_subexpressions, fuse_elementwise)


def optimize(fetches, passes=None, report=False):
    """The fetches rewritten by each of ``passes`` in turn (default :data:`DEFAULT_PASSES`) — a
    pass itself.

    Each pass's result is checked (one node per fetch, same dtypes and shapes). ``report=True``
    returns ``(fetches, report)``, a :class:`Report` of the nodes before and after each pass and
    what it changed."""
    fetches = check_fetches(fetches, "optimize")
    table = Report(fetches) if report else None
    for graph_pass in DEFAULT_PASSES if passes is None else passes:
        name = getattr(graph_pass, "__name__", repr(graph_pass))
        fetches = check_result(fetches, graph_pass(list(fetches)), name)
        if table:
            table.add(name, fetches)
    return (fetches, table) if report else fetches


def kind(node):
    """What a report calls a node: its op's name (``fused`` for every fused kernel)."""
    return "fused" if isinstance(node.op, FusedElementwise) else node.op.name


class Report:
    """One row per pass: ``{"pass", "nodes", "ops", "change"}`` — how many nodes the fetches reach, how
    many of them the executor runs (all but placeholders, variables and constants), and by how much the
    number of nodes of each kind changed (``{"constant": -33, ...}``). Printed, a table."""

    def __init__(self, fetches):
        self.rows = []
        self._last = topological_sort(fetches)
        self._append("(as built)", self._last, {})

    def add(self, name, fetches):
        nodes = topological_sort(fetches)
        change = Counter(map(kind, nodes))
        change.subtract(Counter(map(kind, self._last)))  # rebuilt nodes leave and enter: they cancel out
        self._append(name, nodes, {k: n for k, n in change.items() if n})
        self._last = nodes

    def _append(self, name, nodes, change):
        ops = sum(not isinstance(node.op, Source) for node in nodes)
        self.rows.append({"pass": name, "nodes": len(nodes), "ops": ops, "change": change})

    def __repr__(self):
        lines = [f"{'pass':34}{'nodes':>6}{'ops':>6}   change by kind of node"]
        for row in self.rows:
            change = sorted(row["change"].items(), key=lambda item: (item[1] > 0, -abs(item[1]), item[0]))
            wrapped = packed([f"{n:+d} {k}" for k, n in change] or ["-"], 51)  # fits 100 columns
            lines.append(f"{row['pass']:34}{row['nodes']:6}{row['ops']:6}   {wrapped[0]}")
            lines += [" " * 49 + more for more in wrapped[1:]]
        return "\n".join(lines)


def packed(items, width):
    """``items`` joined by commas into lines of at most about ``width`` characters."""
    lines = [items[0]]
    for item in items[1:]:
        if len(lines[-1]) + 2 + len(item) > width:
            lines[-1] += ","
            lines.append(item)
        else:
            lines[-1] += f", {item}"
    return lines
