"""Dead-code elimination: compute nothing whose value nobody uses.

Half of it is built into the graph itself: the fetches reach only what they depend on, and an executor
runs only those nodes (chapter 02), so an accuracy branch built next to the loss is never computed for a
training step. The other half is the ``group``: its value is ``None``, it runs its inputs only for their
effects (the assigns of a training step). An input of a group without any effect — an accuracy, a
summary — is computed only to be thrown away: dead code, although the fetches reach it.
"""

from ..graph import topological_sort
from ..ops import Group
from .core import check_fetches, rebuild, rewrite


def has_effect(order):
    """For each node of ``order`` (a topological order): does running it change anything — is it, or is
    any node it depends on, stateful (an assign, a random draw)?"""
    effect = {}
    for node in order:
        effect[node] = node.op.stateful or any(effect[x] for x in node.inputs)
    return effect


def eliminate_dead_code(fetches):
    """The fetches, with every ``group`` keeping only the inputs that have an effect."""
    fetches = check_fetches(fetches, "eliminate_dead_code")
    effect = has_effect(topological_sort(fetches))

    def replace(node, inputs):
        if isinstance(node.op, Group):
            inputs = [new for old, new in zip(node.inputs, inputs) if effect[old]]
        return rebuild(node, inputs)

    return rewrite(fetches, replace)
