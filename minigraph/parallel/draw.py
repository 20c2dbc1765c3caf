"""Pictures for chapter 07: a threaded run as a Gantt chart, what can run at once coloured on the graph,
an all-reduce round by round, and the α-β costs of the algorithms against N.

    executor = mg.parallel.ThreadedExecutor(fetches, workers=2); executor.run(feed)
    mg.parallel.draw.gantt(executor.trace); plt.show()
    mg.draw(fetches, highlight=mg.parallel.draw.by_thread(executor.trace))
    mg.parallel.draw.rounds(mg.parallel.tagged(mg.parallel.ring_allreduce, 4)); plt.show()
"""

from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np

from ..graph import topological_sort
from ..memory import PALETTE
from .allreduce import contributors
from .cost import ROUNDS_AND_BYTES, allreduce_time
from .scheduler import levels

ADD_COLOUR, COPY_COLOUR = "tab:orange", "tab:blue"
THREAD_COLOURS = ("#93c5fd", "#fcd34d", "#86efac", "#f9a8d4", "#c4b5fd", "#fdba74", "#67e8f9", "#bef264")


def gantt(trace, title=None, ax=None, colour_by="op"):
    """A threaded run's ``trace`` (a list of :class:`~.scheduler.Span`) as a Gantt chart: one row per
    thread, one bar per node from its start to its end; a bar wide enough carries the node's name. Bars are
    coloured by op (``colour_by="op"``: the seven ops that took longest, the others grey) or by the role of
    the node (``"role"``: forward, gradient, update, ...). Where a row has no bar, its thread was waiting
    for a node to become ready, or running the Python between two nodes."""
    if not trace:
        raise ValueError("gantt: the trace is empty; run a ThreadedExecutor first")
    if colour_by not in ("op", "role"):
        raise ValueError(f"gantt: colour_by must be 'op' or 'role', not {colour_by!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 0.55 * (max(span.thread for span in trace) + 1) + 1.4))
    key = (lambda node: node.op.name) if colour_by == "op" else (lambda node: node.role or "forward")
    busy = defaultdict(float)
    for span in trace:
        busy[key(span.node)] += span.end - span.start
    shown = sorted(busy, key=busy.get, reverse=True)[:7]
    colour = {name: plt.get_cmap("tab10")(index) for index, name in enumerate(sorted(shown))}
    total = max(span.end for span in trace) * 1e3
    for span in trace:
        start, width = span.start * 1e3, (span.end - span.start) * 1e3
        ax.barh(span.thread, width, left=start, height=0.7, color=colour.get(key(span.node), "0.75"),
                edgecolor="white", linewidth=0.5)
        if width > 0.06 * total:
            ax.text(start + width / 2, span.thread, span.node.name, ha="center", va="center", fontsize=7, clip_on=True)
    names = sorted(shown) + (["other"] if len(busy) > len(shown) else [])
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colour.get(name, "0.75")) for name in names], labels=names,
              fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    threads = sorted({span.thread for span in trace})
    ax.set_yticks(threads, [f"thread {t}" for t in threads])
    ax.set_ylim(max(threads) + 0.6, -0.6)
    ax.set_xlim(0, total * 1.01)
    ax.set_xlabel("time since the run started (ms)")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def by_level(fetches):
    """Graphviz attributes for ``mg.draw(fetches, highlight=by_level(fetches))``: each op filled with the
    colour of its :func:`~.scheduler.levels` level and labelled with it — the ops of one level do not
    depend on one another."""
    level = levels(topological_sort(fetches))
    return lambda node: ({"fillcolor": PALETTE[level[node] % len(PALETTE)], "xlabel": f"L{level[node]}",
                          "fontcolor": "#111827"} if node.inputs else None)


def by_thread(trace):
    """Graphviz attributes for ``mg.draw(..., highlight=by_thread(trace))``: each node a threaded run
    computed, filled with the colour of its thread and labelled with its place in the order of starts."""
    spans = {span.node: (position, span.thread) for position, span in enumerate(trace)}

    def attributes(node):
        if node not in spans:
            return None
        position, thread = spans[node]
        return {"fillcolor": THREAD_COLOURS[thread % len(THREAD_COLOURS)], "xlabel": f"t{thread}:{position}",
                "fontcolor": "#111827"}
    return attributes


def rounds(network, columns=4):
    """Draw a :func:`~.allreduce.tagged` run: the start, then one panel per round (``columns`` a row).

    Rows are workers, columns the elements of their buffers. Each cell lists the workers whose data it
    holds, and is shaded by their number (darkest: the finished sum of all). Arrows are the round's
    transfers, from the sender's part to the receiver's: orange adds to it, blue overwrites it."""
    if network.initial is None:
        raise ValueError("rounds: draw a network that recorded its buffers, e.g. tagged(ring_allreduce, 4)")
    states = [("start", [], network.initial)] + [(r.phase, r.transfers, r.buffers) for r in network.rounds]
    workers, size = network.initial.shape
    rows = -(-len(states) // columns)
    width, height = 0.55 * size + 0.9, 0.42 * workers + 0.8
    fig, axes = plt.subplots(rows, min(columns, len(states)), squeeze=False,
                             figsize=(min(columns, len(states)) * width, rows * height))
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(states):
            _panel(ax, index, *states[index], workers, size)
    fig.tight_layout()
    return fig


def _panel(ax, index, phase, transfers, buffers, workers, size):
    held = np.vectorize(lambda value: len(contributors(value)))(buffers)
    ax.imshow(held, cmap="Greens", vmin=0, vmax=workers * 1.4, aspect="auto")
    for worker in range(workers):
        for element in range(size):
            names = contributors(buffers[worker, element])
            text = "all" if len(names) == workers > 1 else "+".join(map(str, names))
            ax.text(element, worker, text, ha="center", va="center", fontsize=7 if len(text) < 6 else 5,
                    color="white" if len(names) == workers else "black")
    for t in transfers:
        middle = (t.start + t.stop - 1) / 2
        ax.annotate("", xy=(middle + 0.2, t.destination), xytext=(middle + 0.2, t.source),
                    arrowprops=dict(arrowstyle="->", color=ADD_COLOUR if t.add else COPY_COLOUR, lw=1.3,
                                    connectionstyle="arc3,rad=-0.35"))
    ax.axis("on")
    ax.set_xticks(range(size), [str(e) for e in range(size)] if size <= 16 else [""] * size, fontsize=6)
    ax.set_yticks(range(workers), [f"worker {w}" for w in range(workers)], fontsize=7)
    ax.tick_params(length=0)
    ax.set_xlabel("element", fontsize=7)
    ax.set_title(phase if index == 0 else f"{index}: {phase}", fontsize=9)


def costs(alpha, beta, nbytes, max_workers=16):
    """The α-β time of each all-reduce algorithm for ``nbytes`` bytes against the number of workers."""
    workers = np.arange(1, max_workers + 1)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for algorithm in ROUNDS_AND_BYTES:
        seconds = [allreduce_time(algorithm, n, nbytes, alpha, beta) for n in workers]
        ax.plot(workers, 1e3 * np.array(seconds), ".-", label=algorithm)
    ax.set_xlabel("workers N")
    ax.set_ylabel("all-reduce time (ms)")
    ax.set_title(f"{nbytes / 1e6:.3g} MB, α = {alpha * 1e6:.3g} µs, β = 1 / ({1e-9 / beta:.3g} GB/s)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
