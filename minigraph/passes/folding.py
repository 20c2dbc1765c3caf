"""Constant folding: what depends only on constants is computed once, when the graph is optimized.

``(1 - 0.9) * g`` written with constant nodes computes ``1 - 0.9`` at every run; folded, it multiplies
``g`` by the constant ``0.1``. Only pure ops are folded (``op.stateful`` is false): an assign must write at
every run and a dropout mask must draw new numbers. Placeholders and variables are never constant.
"""

from ..graph import Constant, role_scope
from .core import check_fetches, rebuild, rewrite


def fold_constants(fetches):
    """The fetches, with every pure op node whose inputs are all constants replaced by a
    constant."""
    fetches = check_fetches(fetches, "fold_constants")

    def replace(node, inputs):
        node = rebuild(node, inputs)
        constant_inputs = inputs and all(isinstance(x, Constant) for x in inputs)
        if not constant_inputs or node.op.stateful or node.dtype is None:
            return node
        try:
            value = node.op.compute(node, [x.constant for x in inputs])
        except Exception:  # leave the error to the run, which names the node that raised it
            return node
        with role_scope(node.role):
            return Constant(value, name=node.name, dtype=node.dtype)

    return rewrite(fetches, replace)
