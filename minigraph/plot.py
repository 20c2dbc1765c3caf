"""Pictures for the notebooks: MNIST digits, training curves, memory plans, and the package's own source code.

A *history* is a dict of equal-length lists: one x key (``"epoch"`` or ``"step"``) and any of
``"train_loss"``, ``"test_loss"``, ``"train_acc"``, ``"test_acc"``::

    history = {"epoch": [1, 2], "train_loss": [0.4, 0.3], "test_acc": [0.91, 0.92]}
    mg.plot.training_curves(history); plt.show()
"""
import inspect

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

X_KEYS = ("epoch", "step")
METRIC_LABELS = {"loss": "cross-entropy loss", "acc": "accuracy"}
LINE_STYLES = ("-", "--", ":", "-.")


def digits(images, labels=None, rows=4, cols=10, predictions=None):
    """Show the first ``rows * cols`` images (each 784 pixels) in a grid, titled with their labels.

    With ``predictions``, a wrong prediction is titled "label→prediction" in red.
    """
    count = min(rows * cols, len(images))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 1.05))
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i >= count:
            continue
        ax.imshow(np.reshape(images[i], (28, 28)), cmap="gray_r", vmin=0, vmax=1)
        if labels is None:
            continue
        title, colour = str(labels[i]), "black"
        if predictions is not None and predictions[i] != labels[i]:
            title, colour = f"{labels[i]}→{predictions[i]}", "crimson"
        ax.set_title(title, fontsize=9, color=colour)
    fig.tight_layout()
    return fig


def _x_key(history):
    for key in X_KEYS:
        if key in history:
            return key
    raise ValueError(f"a history needs an x key, one of {X_KEYS}; it has {sorted(history)}")


def training_curves(history, title=None):
    """Plot loss and accuracy, train and test, against epochs or steps: two panels side by side."""
    x_key = _x_key(history)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("loss", "acc")):
        for split, style in (("train", "-"), ("test", "--")):
            key = f"{split}_{metric}"
            if key in history:
                ax.plot(history[x_key], history[key], style, marker=".", label=split)
        ax.set_xlabel(x_key)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare(histories, metric="test_acc", title=None, ylim=None):
    """Plot one metric of several runs on one axis: ``histories`` maps a label to a history."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for run, (label, history) in enumerate(histories.items()):
        if metric not in history:
            raise ValueError(f"history {label!r} has no {metric!r}; it has {sorted(history)}")
        style = LINE_STYLES[run % len(LINE_STYLES)]  # runs that coincide stay visible
        ax.plot(history[_x_key(history)], history[metric], style, marker=".", label=label)
    ax.set_xlabel(_x_key(next(iter(histories.values()))))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    split, _, kind = metric.partition("_")
    ax.set_ylabel(f"{split} {METRIC_LABELS.get(kind, kind)}")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


class SourceCode:
    """Source code that renders as highlighted Markdown in Jupyter and as plain text elsewhere."""

    def __init__(self, text):
        self.text = text

    def _repr_markdown_(self):
        return f"```python\n{self.text}\n```"

    def __repr__(self):
        return self.text


def show_source(obj):
    """The source of a function, class or method of the package, to read in a notebook."""
    return SourceCode(inspect.getsource(obj).rstrip())


def memory_plan(plan, usage, title=None, label_values=False):
    """A memory plan (chapter 06) as a chart: on top one row per buffer, with a bar from each value's step to
    the last step that reads it (hatched: computed in place over an input); below, the bytes held during
    each step, planned and when every value is kept. ``usage`` is ``plan.usage(feed_shapes)``."""
    from .memory import PALETTE

    buffers = sorted(set(plan.buffer.values()))
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 2.2 + min(len(buffers), 40) * 0.12),
                                      gridspec_kw={"height_ratios": [max(2, min(len(buffers), 40) / 8), 1.6]})
    last_step = len(plan.order) - 1
    for value, (born, dies) in plan.lifetime.items():
        buffer = plan.buffer[value]
        top.barh(buffer, min(dies, last_step) - born + 1, left=born - 0.5, height=0.8, color=PALETTE[buffer % len(PALETTE)],
                 edgecolor="#374151", linewidth=0.5, hatch="///" if value in plan.in_place else None)
        if label_values:
            top.text(born - 0.4, buffer, value.name, va="center", fontsize=7)
    top.set_ylabel("buffer")
    top.invert_yaxis()
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    steps = np.arange(len(plan.order))
    kept = np.zeros(len(plan.order))
    for value, size in usage.sizes.items():
        kept[plan.lifetime[value][0]:] += size
    bottom.step(steps, kept / 2**20, where="mid", color="#9ca3af", label=f"keep everything (peak {kept.max() / 2**20:.2f} MiB)")
    bottom.fill_between(steps, np.asarray(usage.live) / 2**20, step="mid", color="#60a5fa", alpha=0.6,
                        label=f"planned (peak {usage.peak / 2**20:.2f} MiB)")
    bottom.set_xlabel("step (the executor's order)")
    bottom.set_ylabel("MiB held")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=8, loc="upper left")
    if title:
        top.set_title(title)
    fig.tight_layout()
    return fig
