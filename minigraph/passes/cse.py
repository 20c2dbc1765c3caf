"""Common-subexpression elimination by hash-consing: build each distinct value once.

Two nodes compute the same value when they apply the same op, with the same parameters, to the same
inputs. Walking the graph bottom-up and keeping a table ``key -> first node with that key``, every later
node with a key already in the table is replaced by the node there; since its inputs were merged before
it, equal subtrees of any depth collapse. Constants are equal when their dtype, shape and bytes are.
Sources that are not constants (placeholders, variables) and stateful ops (two ``assign_add(v, 1)`` add
twice; two dropout masks differ) are never merged: each is its own key.
"""

import numpy as np

from ..graph import Constant
from .core import check_fetches, rebuild, rewrite


def value_key(value):
    """A hashable stand-in for an op parameter: equal keys mean equal parameters."""
    if isinstance(value, float):
        return ("float", value.hex())  # 0.0 and -0.0 are == but not the same parameter
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(value_key(item) for item in value))
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    try:
        hash(value)
    except TypeError:
        return ("object", id(value))  # unhashable: equal only to itself
    return (type(value), value)


def node_key(node):
    """The key of the value ``node`` computes, or ``None`` if it is equal to no other node."""
    if isinstance(node, Constant):
        return ("constant", node.dtype.str, node.shape, node.constant.tobytes())
    if not node.inputs or node.op.stateful:
        return None
    parameters = tuple(sorted((name, value_key(value)) for name, value in node.attrs.items()))
    return (type(node.op), parameters, node.inputs)  # nodes, compared by identity


def eliminate_common_subexpressions(fetches):
    """The fetches, with every node equal to an earlier one (same key) replaced by that one."""
    fetches = check_fetches(fetches, "eliminate_common_subexpressions")
    first = {}

    def replace(node, inputs):
        node = rebuild(node, inputs)
        key = node_key(node)
        return node if key is None else first.setdefault(key, node)

    return rewrite(fetches, replace)
