"""What every pass shares: checking its input and output, and rebuilding a graph bottom-up.

A pass never edits a node: nodes are immutable once built (their shape was inferred from their inputs).
To change a node's inputs it builds a new node, and then everything above it must be rebuilt too — the
consumers of the new node, their consumers, up to the fetches. :func:`rewrite` does that walk once for
every pass: it visits the nodes in topological order, so each node sees its inputs already rewritten.
"""

import itertools
import linecache

from ..graph import Node, Placeholder, Variable, make_node, role_scope, shapes_compatible, topological_sort


def check_fetches(fetches, pass_name):
    """``fetches`` as a list of nodes, or a ``TypeError`` that says what ``pass_name`` was given instead."""
    if isinstance(fetches, Node):
        raise TypeError(f"{pass_name} takes a list of nodes, not a node: write {pass_name}([{fetches.name}])")
    if not isinstance(fetches, (list, tuple)):
        raise TypeError(f"{pass_name} takes a list of nodes, got a {type(fetches).__name__}")
    for position, fetch in enumerate(fetches):
        if not isinstance(fetch, Node):
            raise TypeError(f"{pass_name}: fetch {position} is a {type(fetch).__name__}, not a Node")
    return list(fetches)


def check_result(fetches, result, pass_name):
    """Check that a pass kept the contract: one node per fetch, in order, each of the same dtype and shape."""
    if not isinstance(result, (list, tuple)) or len(result) != len(fetches):
        got = f"{len(result)} nodes" if isinstance(result, (list, tuple)) else f"a {type(result).__name__}"
        raise ValueError(f"{pass_name} returned {got} for {len(fetches)} fetches; a pass returns one node per fetch")
    for position, (before, after) in enumerate(zip(fetches, result)):
        if not isinstance(after, Node):
            raise TypeError(f"{pass_name} returned a {type(after).__name__} for fetch {position} ({before.name!r})")
        if after.dtype != before.dtype or not shapes_compatible(after.shape, before.shape):
            raise ValueError(f"{pass_name} replaced fetch {position} {before!r} by {after!r}: a pass must keep "
                             "each fetch's dtype and shape")
    sources = {node for node in topological_sort(fetches) if isinstance(node, (Placeholder, Variable))}
    for node in topological_sort(result):
        if isinstance(node, (Placeholder, Variable)) and node not in sources:
            raise ValueError(f"{pass_name} returned a graph with {node!r}, which the graph it was given does not "
                             "have: placeholders and variables must stay the same objects (feeds and a Session's "
                             "values are keyed by them)")
    return list(result)


def rebuild(node, inputs):
    """``node`` itself if ``inputs`` are its own inputs, else the same op applied to ``inputs``
    (the same name and role). Sources have no inputs, so placeholders, variables and constants
    are always kept."""
    if len(inputs) == len(node.inputs) and all(a is b for a, b in zip(inputs, node.inputs)):
        return node
    with role_scope(node.role):
        return make_node(node.op, inputs, name=node.name)


def rewrite(fetches, replace):
    """Rebuild the graph of ``fetches`` bottom-up; returns the new fetches (a list, in the same
    order).

    ``replace(node, inputs) -> node`` is called once per node, in topological order, with
    ``inputs`` the node's inputs as already rewritten; it returns the node to use in its place —
    ``rebuild(node, inputs)`` to change nothing but the inputs. Nodes that nothing changed stay
    the same objects."""
    new = {}
    for node in topological_sort(fetches):
        new[node] = replace(node, [new[x] for x in node.inputs])
    return [new[fetch] for fetch in fetches]


_source_numbers = itertools.count()


def compile_function(source, name, namespace, kind):
    """The function ``name`` that ``source`` defines, run in ``namespace`` (the names its code uses). Its
    source stays readable (``inspect.getsource``, tracebacks) through Python's line cache, as for code typed
    into a notebook, under a file name such as ``<minigraph fused kernel 3>`` (``kind`` is ``"fused kernel"``)."""
    filename = f"<minigraph {kind} {next(_source_numbers)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]
