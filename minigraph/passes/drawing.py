"""Before and after: a graph and its optimized version drawn side by side, with the changes coloured.

In the drawing before, the nodes that the passes removed or replaced are dashed red; in the drawing after,
the nodes the passes built are outlined in blue and fused kernels are orange.
"""

import re

from ..graph import topological_sort
from ..viz import draw, render_svg
from .fusion import FusedElementwise

GONE = {"style": "dashed", "color": "#dc2626", "fontcolor": "#991b1b", "penwidth": "1.5"}
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
    """Two drawings side by side, as one SVG image (``.before`` and ``.after`` are the drawings)."""

    GAP = 36  # points between the two drawings
    MAX_WIDTH = 600  # points (800 pixels): wider pairs are scaled down to fit in a notebook

    def __init__(self, before, after):
        self.before, self.after = before, after

    def __repr__(self):
        return f"<before: {self.before.node_count} nodes, after: {self.after.node_count} nodes>"

    def _repr_svg_(self):
        parts, x = [], 0.0
        for drawing in (self.before, self.after):
            svg = render_svg(drawing.source, drawing.timeout, repr(drawing))  # dot, within its time limit
            svg = svg[svg.index("<svg"):]  # without the XML prologue
            width, height = (float(re.search(rf'{size}="([\d.]+)pt"', svg).group(1)) for size in ("width", "height"))
            svg = re.sub(r'<svg width="[\d.]+pt" height="[\d.]+pt"', f'<svg x="{x:g}" y="0" width="{width:g}" height="{height:g}"', svg, count=1)
            parts.append((svg, height))
            x += width + self.GAP
        width, height = x - self.GAP, max(h for _, h in parts)
        scale = min(1.0, self.MAX_WIDTH / width)
        return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{width * scale:.0f}pt" '
                f'height="{height * scale:.0f}pt" viewBox="0 0 {width:g} {height:g}">\n'
                + "\n".join(svg for svg, _ in parts) + "\n</svg>\n")


def draw_pair(before, after, **options):
    """Draw the graphs of fetch lists ``before`` and ``after`` side by side, the changes highlighted.

    ``options`` go to :func:`minigraph.draw` for both (e.g. ``rankdir="LR"``).
    """
    for_before, for_after = highlights(before, after)
    titles = [f"{when}: {len(topological_sort(fetches))} nodes" for when, fetches in (("before", before), ("after", after))]
    return DrawingPair(draw(before, highlight=for_before, title=titles[0], **options),
                       draw(after, highlight=for_after, title=titles[1], **options))
