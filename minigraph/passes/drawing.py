"""Before and after: a graph and its optimized version drawn side by side, with the changes coloured.

In the drawing before, the nodes that the passes removed or replaced are dashed red; in the drawing after,
the nodes the passes built are outlined in blue and fused kernels are orange.
"""

from ..graph import topological_sort
from ..viz import draw
from .fusion import FusedElementwise

GONE = {"style": "filled,dashed", "color": "#dc2626", "fontcolor": "#991b1b", "penwidth": "1.5"}
NEW = {"color": "#0284c7", "penwidth": "2.5"}
FUSED = {"style": "filled", "fillcolor": "#ffedd5", "color": "#ea580c", "penwidth": "2.5"}


def changes(before, after):
    """``(gone, new)``: the nodes of graph ``before`` that are not in graph ``after``, and the reverse
    (each graph given by its list of fetches)."""
    old, current = set(topological_sort(before)), set(topological_sort(after))
    return old - current, current - old


def highlights(before, after):
    """``(for_before, for_after)``: ``mg.draw(..., highlight=...)`` attributes that mark the changes."""
    gone, new = changes(before, after)
    return ({node: GONE for node in gone},
            {node: FUSED if isinstance(node.op, FusedElementwise) else NEW for node in new})


class DrawingPair:
    """Two drawings shown side by side in a notebook (``.before`` and ``.after`` are the drawings)."""

    def __init__(self, before, after):
        self.before, self.after = before, after

    def __repr__(self):
        return f"<before: {self.before.node_count} nodes, after: {self.after.node_count} nodes>"

    def _repr_html_(self):
        cells = "".join(f'<td style="vertical-align:top">{_inline_svg(drawing)}</td>' for drawing in (self.before, self.after))
        return f"<table><tr>{cells}</tr></table>"


def _inline_svg(drawing):
    """The drawing's SVG without the XML prologue, so that it can sit inside HTML."""
    svg = drawing._repr_image_svg_xml()
    return svg[svg.index("<svg"):]


def draw_pair(before, after, **options):
    """Draw the graphs of fetch lists ``before`` and ``after`` side by side, the changes highlighted.

    ``options`` go to :func:`minigraph.draw` for both (e.g. ``rankdir="LR"``).
    """
    for_before, for_after = highlights(before, after)
    titles = [f"{when}: {len(topological_sort(fetches))} nodes" for when, fetches in (("before", before), ("after", after))]
    return DrawingPair(draw(before, highlight=for_before, title=titles[0], **options),
                       draw(after, highlight=for_after, title=titles[1], **options))
