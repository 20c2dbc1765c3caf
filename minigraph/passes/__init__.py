"""Graph optimization (chapter 05): passes that rewrite a graph into a cheaper one with the same values.

A **pass** is a function ``fetches -> fetches``: it takes a list of nodes and returns a list of the same
length and order, whose nodes compute the same values (and have the same effects) as the nodes given.
It never changes a node it is given — nodes are immutable — but builds new nodes where something changes,
and keeps every other node, so placeholders and variables stay the same objects (feeds and a Session's
variable values carry over). Ops whose ``op.stateful`` is set (assign ops, random draws) are never
folded, merged or dropped. Something that is not a list of nodes is refused with a ``TypeError``.

    optimized = mg.passes.optimize([loss, train_step])        # the default pipeline
    sess = mg.Session(optimize=True)                          # ... applied to every fetch set it runs
    sess = mg.Session(optimize=my_pipeline)                   # any function fetches -> fetches

The passes: :func:`eliminate_dead_code`, :func:`fold_constants`, :func:`simplify` (its rules in
:data:`RULES`), :func:`eliminate_common_subexpressions`, :func:`fuse_elementwise`; :func:`rewrite` and
:func:`rebuild` are the two helpers every pass is written with.
"""

from .core import check_fetches, check_result, rebuild, rewrite
from .cse import eliminate_common_subexpressions, node_key
from .dead_code import eliminate_dead_code
from .drawing import DrawingPair, changes, draw_pair, highlights
from .folding import fold_constants
from .fusion import FusedElementwise, find_fusable_groups, fuse_elementwise
from .pipeline import DEFAULT_PASSES, Report, optimize
from .algebra import RULES, simplify
