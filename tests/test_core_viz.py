"""Drawing: deterministic DOT source, a stable text form, distinct styles per kind of node, parts of big
graphs, a legend, a bounded layout time and drawings that fit a notebook's width."""

import re
import shutil

import graphviz
import numpy as np
import pytest

import minigraph as mg


def softmax_regression_step():
    x = mg.placeholder("x", (None, 784))
    y = mg.placeholder("y", (None,), "int64")
    W, b = mg.Variable(np.zeros((784, 10), np.float32), name="W"), mg.Variable(np.zeros(10, np.float32), name="b")
    loss = mg.reduce_mean(mg.softmax_cross_entropy(x @ W + b, y))
    return loss, mg.optim.SGD(0.5).minimize(loss)


def test_the_same_graph_gives_the_same_dot_source():
    loss, step = softmax_regression_step()
    first = mg.draw([loss, step])
    assert isinstance(first, graphviz.Digraph) and first.source == mg.draw([loss, step]).source
    rebuilt_loss, rebuilt_step = softmax_regression_step()  # generated names differ, the drawing does not
    assert mg.draw([rebuilt_loss, rebuilt_step]).source == first.source
    ids = re.findall(r"^\s*(n\d+) \[", first.source, re.MULTILINE)
    assert sorted(ids, key=lambda i: int(i[1:])) == [f"n{i}" for i in range(len(ids))]


def test_text_form_is_stable_without_memory_address():
    loss, step = softmax_regression_step()
    drawing = mg.draw(loss)
    assert repr(drawing) == "<minigraph drawing: 8 nodes>" and "0x" not in repr(drawing)


def fill_color(source, label_fragment):
    line = next(line for line in source.splitlines() if label_fragment in line)
    return re.search(r'fillcolor="(#[0-9a-f]+)"', line).group(1)


def test_node_kinds_are_drawn_distinctly_and_shapes_are_shown():
    loss, step = softmax_regression_step()
    source = mg.draw([loss, step]).source
    colors = {kind: fill_color(source, fragment) for kind, fragment in {
        "placeholder": "<B>x</B>", "variable": "<B>W</B>", "state": "<B>iterations</B>", "op": "reduce_mean",
        "gradient": "softmax_cross_entropy_grad", "assign": "assign_sub"}.items()}
    assert len(set(colors.values())) == len(colors)
    assert "(None, 784)" in source and "matmul (Aᵀ)" in source and "cluster_gradient" in source and "cluster_update" in source
    assert "arrowhead=empty style=dashed" in source.replace('"', "")  # shape-only inputs


def test_collapse_summarises_a_role():
    loss, step = softmax_regression_step()
    source = mg.draw([loss, step], collapse=["update"], rankdir="LR", title="SGD").source
    assert "assign_sub" not in source and "<B>updates</B>" in source and "rankdir=LR" in source
    assert len(re.findall(r"-> updates\b", source)) == len(set(re.findall(r"(\w+) -> updates\b", source)))


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")
def test_svg_output_has_no_graphviz_version():
    loss, _ = softmax_regression_step()
    svg = mg.draw(loss)._repr_mimebundle_()["image/svg+xml"]
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "graphviz version" not in svg


def test_an_input_used_twice_is_drawn_with_two_edges():
    x = mg.placeholder("x", shape=(3,))
    source = mg.draw(x * x).source
    assert source.count("n0 -> n1") == 2


def test_highlight_lays_attributes_over_the_style():
    x = mg.placeholder("x", shape=(3,))
    y = mg.exp(x)
    by_dict = mg.draw(y * 2, highlight={y: {"fillcolor": "#123456", "penwidth": "3"}}).source
    line = next(line for line in by_dict.splitlines() if "exp" in line)
    assert 'fillcolor="#123456"' in line and "penwidth=3" in line
    assert by_dict.count("#123456") == 1
    by_function = mg.draw(y * 2, highlight=lambda node: {"color": "#abcdef"} if node is x else None).source
    assert by_function.count("#abcdef") == 1 and "<B>x</B>" in next(l for l in by_function.splitlines() if "#abcdef" in l)


def tanh_chain_with_gradients(steps):
    """The graph that sat in dot for minutes: a chain of tanh layers and its gradient (about 9 nodes a step)."""
    x = mg.placeholder("x", (None, 8))
    w = mg.Variable(np.ones((8, 8), np.float32), name="w")
    h = x
    for _ in range(steps):
        h = mg.tanh(h @ w)
    loss = mg.reduce_mean(h)
    return x, w, h, loss, mg.gradients(loss, [w])[0]


def test_a_big_graph_is_refused_with_the_ways_to_draw_a_part():
    x, w, h, loss, grad = tanh_chain_with_gradients(40)
    with pytest.raises(ValueError, match=r"draw: 3\d\d boxes to draw, more than max_nodes=200; .* hide=\['gradient', "
                                         r"'update'\] .* between=\[node\] .* collapse=\['gradient'\] .* max_nodes=None"):
        mg.draw([loss, grad])
    forward = mg.draw([loss, grad], hide=["gradient"])
    assert forward.node_count == len(mg.topological_sort(loss)) and "gradient" not in forward.source
    assert mg.draw([loss, grad], collapse=["gradient"]).source.count("<B>gradients</B>") == 1
    assert mg.draw([loss, grad], max_nodes=None).node_count == len(mg.topological_sort([loss, grad]))


def test_between_draws_what_depends_on_the_given_nodes_and_marks_the_inputs_cut_off():
    x, w, h, loss, grad = tanh_chain_with_gradients(3)
    last_matmul = h.inputs[0]
    part = mg.draw(loss, between=last_matmul)
    labels = re.findall(r"<TD>([^<]+)</TD>", part.source)
    assert labels == ["… tanh", "matmul", "tanh", "reduce_mean"] and "<B>w</B>" in part.source
    cut_line = next(line for line in part.source.splitlines() if "… tanh" in line)
    assert "style=dotted" in cut_line and part.source.count(" -> ") == 4  # no edge into the cut-off node
    with pytest.raises(ValueError, match=r"the fetches do not depend on between=\['x_other'\]"):
        mg.draw(loss, between=[mg.placeholder("x_other")])


def test_the_legend_lists_the_kinds_drawn():
    loss, step = softmax_regression_step()
    source = mg.draw(step, legend=True, title="SGD").source
    legend = re.search(r"label=<<FONT.*</FONT>>", source).group(0)
    for text in ("SGD", "placeholder", "variable", "optimizer state", "gradient op", "update op", "assign", "shape only"):
        assert text in legend
    assert "tangent" not in legend and "legend" not in mg.draw(loss).source.lower()
    assert 'BGCOLOR="#dbeafe" COLOR="#2563eb"' in legend  # the placeholder's own colours


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")
def test_dot_gets_a_time_limit():
    x, w, h, loss, grad = tanh_chain_with_gradients(15)
    drawing = mg.draw([loss, grad])
    drawing.timeout = 0.01
    with pytest.raises(TimeoutError, match=r"dot did not lay out <minigraph drawing: \d+ nodes> in 0.01 s. Draw a part"):
        drawing._repr_mimebundle_()


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")
def test_wide_drawings_scale_to_the_output_width_and_narrow_ones_keep_their_size():
    x, w, h, loss, grad = tanh_chain_with_gradients(12)
    wide = mg.draw(loss, rankdir="LR")._repr_mimebundle_()["image/svg+xml"]
    narrow = mg.draw(mg.exp(x))._repr_mimebundle_()["image/svg+xml"]
    assert re.search(r'<svg width="100%"\s+viewBox="[\d. ]+"', wide) and "height=" not in wide.split("viewBox")[0]
    assert re.search(r'<svg width="\d+pt" height="\d+pt"', narrow)


def test_hand_made_drawings_have_the_styles_of_draw_and_a_stable_text_form():
    drawing = mg.viz.sketch({"x": ("x", "placeholder"), "W": ("W", "variable"), "h": ("matmul", "op")},
                            [("x", "h", "N×784"), ("W", "h", "784×10")])
    assert repr(drawing) == "<minigraph drawing: 3 nodes>"
    x_line = next(line for line in drawing.source.splitlines() if line.strip().startswith("x ["))
    assert 'fillcolor="#dbeafe"' in x_line and "shape=parallelogram" in x_line and 'label="N×784"' in drawing.source


def test_hiding_a_role_keeps_the_variables_and_inputs_the_drawn_ops_read():
    loss, step = softmax_regression_step()
    updates = mg.draw(step, hide=["forward"], collapse=["gradient"]).source
    for kept in ("<B>W</B>", "<B>b</B>", "<B>iterations</B>", "assign_sub", "<B>gradients</B>", "<B>x</B>", "<B>y</B>"):
        assert kept in updates  # W and b are written by the updates, x and y read by the gradient
    assert "softmax_cross_entropy<" not in updates and "reduce_mean" not in updates
    forward = mg.draw(step, hide=["gradient", "update"]).source
    assert "<B>iterations</B>" not in forward and "assign" not in forward and "reduce_mean" not in forward
    assert "softmax_cross_entropy<" in forward and "<B>W</B>" in forward
