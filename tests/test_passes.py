"""The graph passes one by one: what each removes, merges, rewrites or fuses, what each must leave alone
(state, randomness, shapes), their errors, and their place in Session(optimize=...)."""

import inspect
import itertools
import re
from collections import Counter

import numpy as np
import pytest

import minigraph as mg
from minigraph import passes
from minigraph.gradcheck import check_gradients
from minigraph.passes import fusion
from minigraph.passes.algebra import RULES, cross_entropy_from_log_softmax
from minigraph.passes.program import CompiledExecutor


def nodes_of(fetches):
    return mg.topological_sort(fetches)


def count(fetches, op_name):
    return sum(node.op.name == op_name for node in nodes_of(fetches))


def adam_mlp(hidden=128, seed=0):
    """The 784-hidden-10 MLP of chapter 04 with its Adam training step."""
    rng = np.random.default_rng(seed)
    x = mg.placeholder("x", (None, 784))
    y = mg.placeholder("y", (None,), "int64")
    h = mg.nn.dense(x, hidden, activation=mg.relu, rng=rng)
    logits = mg.nn.dense(h, 10, rng=rng)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(logits, y))
    return x, y, loss, mg.optim.Adam(0.001).minimize(loss)


ALL_PASSES = [passes.eliminate_dead_code, passes.fold_constants, passes.simplify,
              passes.eliminate_common_subexpressions, passes.fuse_elementwise, passes.optimize]


# ---------------------------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("graph_pass", ALL_PASSES, ids=lambda p: p.__name__)
def test_a_pass_refuses_what_is_not_a_list_of_nodes(graph_pass):
    x = mg.placeholder("x", (3,))
    name = graph_pass.__name__
    with pytest.raises(TypeError, match=rf"{name} takes a list of nodes, not a node: write {name}\(\[x\]\)"):
        graph_pass(x)
    with pytest.raises(TypeError, match=f"{name} takes a list of nodes, got a dict"):
        graph_pass({"x": x})
    with pytest.raises(TypeError, match=f"{name}: fetch 1 is a ndarray, not a Node"):
        graph_pass([x, np.zeros(3)])


@pytest.mark.parametrize("graph_pass", ALL_PASSES, ids=lambda p: p.__name__)
def test_a_pass_keeps_what_it_does_not_change_and_never_edits_a_node(graph_pass):
    x, y, loss, step = adam_mlp(hidden=8)
    fetches = [loss, step, x]
    before = [(node, node.op, node.inputs, node.shape, node.dtype) for node in nodes_of(fetches)]
    result = graph_pass(fetches)
    assert [(node, node.op, node.inputs, node.shape, node.dtype) for node in nodes_of(fetches)] == before
    assert len(result) == 3 and result[2] is x and result[0].shape == () and result[1].op.name == "group"
    kept = set(nodes_of(result))
    sources = [n for n in nodes_of(fetches) if isinstance(n, (mg.Placeholder, mg.Variable))]
    assert all(s in kept for s in sources), "placeholders and variables are the same objects after a pass"
    assert all(a is b for a, b in zip(graph_pass(result), result)), "a second application found more to do"


def test_optimize_checks_each_pass_result_and_reports_what_changed():
    x, y, loss, step = adam_mlp()
    with pytest.raises(ValueError, match="short_pass returned 1 nodes for 2 fetches"):
        passes.optimize([loss, step], passes=[short_pass])
    with pytest.raises(ValueError, match="a pass must keep each fetch's dtype and shape"):
        passes.optimize([loss, step], passes=[lambda fetches: [fetches[1], fetches[0]]])
    with pytest.raises(ValueError, match="returned a graph with <placeholder 'x'.* must stay the same objects"):
        passes.optimize([loss, step], passes=[lambda fetches: [mg.reduce_mean(mg.placeholder("x", (3,))), fetches[1]]])
    optimized, report = passes.optimize([loss, step], report=True)
    rows = {row["pass"]: row for row in report.rows}
    assert [row["pass"] for row in report.rows] == ["(as built)"] + [p.__name__ for p in passes.DEFAULT_PASSES]
    assert rows["(as built)"]["nodes"] == 157 and rows["eliminate_common_subexpressions"]["nodes"] == 110
    # CSE merges the new relu with the forward one, and the loss's log_softmax with its gradient's
    assert rows["simplify"]["change"] == {"relu": 1, "reduce_sum": 2, "sum_to": -2, "log_softmax": 2, "broadcast_to": -1}
    assert rows["eliminate_common_subexpressions"]["change"] == {"constant": -35, "power": -6, "sub": -6, "relu": -1,
                                                                 "log_softmax": -1}
    assert rows["fuse_elementwise"]["change"]["fused"] > 10 and rows["fuse_elementwise"]["nodes"] == len(nodes_of(optimized))
    assert re.search(r"\neliminate_common_subexpressions +110 +88   -35 constant, -6 power, -6 sub, -1 log_softmax,\n"
                     r" +-1 relu\n", repr(report))
    assert len(nodes_of(optimized)) <= 0.75 * 157


def short_pass(fetches):
    return fetches[:1]


# ---------------------------------------------------------------------------------------------- dead code


def test_dead_code_drops_the_pure_inputs_of_a_group_and_keeps_every_effect():
    x = mg.placeholder("x", (None, 3))
    W = mg.Variable(np.ones((3, 2), np.float32), name="W")
    counter = mg.Variable(np.float32(0), name="counter")
    loss = mg.reduce_mean(x @ W)
    accuracy = mg.reduce_mean(mg.cast(mg.equal(mg.argmax(x @ W), 0), "float32"))
    logged = mg.reduce_sum(mg.assign_add(counter, 1.0) * 2.0)  # pure on top, but with an effect below
    step = mg.group(mg.assign_sub(W, 0.1 * mg.gradients(loss, W)), accuracy, logged, name="step")
    (optimized,) = passes.eliminate_dead_code([step])
    assert [n.op.name for n in optimized.inputs] == ["assign_sub", "reduce_sum"]
    assert count([optimized], "argmax") == 0 and count([step], "argmax") == 1
    feed = {x: np.arange(6, dtype=np.float32).reshape(2, 3)}
    plain, pruned = mg.Session(), mg.Session()
    for _ in range(3):
        plain.run(step, feed), pruned.run(optimized, feed)
    assert np.array_equal(plain.run(W), pruned.run(W)) and plain.run(counter) == pruned.run(counter) == 3


# ---------------------------------------------------------------------------------------------- folding


def test_folding_computes_constant_subtrees_once_and_never_state_or_randomness():
    x = mg.placeholder("x", (2,))
    v = mg.Variable(np.float32(3), name="v")
    c = mg.constant(np.array([1.0, 2.0], np.float32))
    y = x * mg.exp(c * 2.0 - 1.0) + v * (1 - 0.5)
    mask = mg.nn.DropoutMask(0.5, np.random.default_rng(0))(c)
    write = mg.assign_add(v, mg.reduce_sum(c))
    (folded_y, folded_mask, folded_write) = passes.fold_constants([y, mask, write])
    assert count([folded_y], "exp") == 0 and count([folded_y], "variable") == 1 and folded_y.inputs[1].inputs[0] is v
    assert folded_mask.op.name == "dropout_mask" and folded_write.op.name == "assign_add"
    assert isinstance(folded_write.inputs[1], mg.Constant)  # reduce_sum(c) is constant; the assign is not
    assert np.array_equal(mg.Session().run(y, {x: [1, 2]}), mg.Session().run(folded_y, {x: [1, 2]}))


def test_folding_leaves_an_error_to_the_run_that_names_the_node():
    labels = mg.constant(np.array([5]))
    loss = mg.softmax_cross_entropy(mg.constant(np.zeros((1, 3), np.float32)), labels)
    (same,) = passes.fold_constants([loss])
    assert same is loss
    with pytest.raises(ValueError, match="labels must lie in"):
        mg.Session().run(same)


# ---------------------------------------------------------------------------------------------- CSE


def test_cse_merges_equal_constants_and_repeated_subtrees_of_any_depth():
    x = mg.placeholder("x", (None, 3))
    a = mg.tanh(x * 2.0 + 1.0)
    b = mg.tanh(x * 2.0 + 1.0)
    c = mg.tanh(x * 2.0 + np.float32(1.0))  # a float32 constant 1.0, like the others
    d = x * np.float64(2.0) + 1.0  # a float64 constant: another value
    e = mg.transpose(x, (1, 0)) + 0.0 * 1  # axes given: not the same op parameters as transpose(x)
    f = mg.transpose(x) + 0.0 * 1
    merged = passes.eliminate_common_subexpressions([a, b, c, d, e, f])
    assert merged[0] is a and merged[1] is a and merged[2] is a and merged[3] is not a
    assert merged[4] is not merged[5]
    assert passes.node_key(mg.constant(-0.0)) != passes.node_key(mg.constant(0.0))


def test_cse_never_merges_state_or_random_draws():
    v = mg.Variable(np.float32(0), name="v")
    twice = mg.group(mg.assign_add(v, 1.0), mg.assign_add(v, 1.0))
    x = mg.placeholder("x", (4,))
    rng = np.random.default_rng(0)
    op = mg.nn.DropoutMask(0.5, rng)
    masks = [op(x), op(x)]
    (merged, *merged_masks) = passes.eliminate_common_subexpressions([twice, *masks])
    assert count([merged], "assign_add") == 2 and merged_masks == masks  # the two 1.0 constants are merged
    sess = mg.Session(optimize=True)
    sess.run(twice)
    assert sess.run(v) == 2.0


# ---------------------------------------------------------------------------------------------- simplify


def float64_input(shape=(2, 3)):
    return mg.placeholder("x", shape, "float64"), np.random.default_rng(0).uniform(0.5, 2.0, shape)


RULE_CASES = {  # rule name -> (build from x, the op left on top, or None when x itself remains)
    "times_one": (lambda x: (x * 1.0) * mg.tanh(1.0 * x), "mul"),
    "plus_zero": (lambda x: mg.tanh(x + 0.0) + mg.tanh(0.0 + x), "add"),
    "minus_zero": (lambda x: mg.tanh(x - 0.0), "tanh"),
    "divided_by_one": (lambda x: mg.tanh(x / 1.0), "tanh"),
    "double_negation": (lambda x: mg.tanh(-(-x)), "tanh"),
    "transpose_of_transpose": (lambda x: mg.tanh(mg.transpose(mg.transpose(x))), "tanh"),
    "reshape_of_reshape": (lambda x: mg.tanh(mg.reshape(mg.reshape(x, (3, 2)), (2, 3))), "tanh"),
    "log_of_exp": (lambda x: mg.tanh(mg.log(mg.exp(x))), "tanh"),
    "log_of_softmax_rule": (lambda x: mg.log(mg.softmax(x) * 1.0), "log_softmax"),
    "sum_to_as_reduce_sum": (lambda x: mg.tanh(mg.sum_to(x, (3,))) * x, "mul"),
    "scalar_gradient_scale": (lambda x: x * mg.gradients(mg.reduce_mean(mg.softmax_cross_entropy(x, mg.constant(np.array([0, 2])))), x),
                              "mul"),
}


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_each_rule_keeps_values_and_gradients(rule):
    build, top = RULE_CASES[rule]
    assert any(r.__name__ == rule for rules in RULES.values() for r in rules)
    x, value = float64_input()
    y = build(x)
    (simplified,) = passes.simplify([y])
    assert simplified is not y and simplified.op.name == top and len(nodes_of([simplified])) <= len(nodes_of([y]))
    assert Counter(n.op.name for n in nodes_of([y])) != Counter(n.op.name for n in nodes_of([simplified]))
    expected, got = mg.Session().run(y, {x: value}), mg.Session().run(simplified, {x: value})
    if rule in ("log_of_exp", "log_of_softmax_rule"):  # exact in real arithmetic; two roundings fewer here
        np.testing.assert_allclose(got, expected, rtol=1e-14)
    else:
        assert np.array_equal(got, expected)
    total = mg.reduce_sum(simplified * mg.constant(np.linspace(-1, 1, 6).reshape(2, 3)))
    check_gradients(total, [x], {x: value})
    grad_before = mg.gradients(mg.reduce_sum(y), x)
    (grad_after,) = passes.simplify([mg.gradients(mg.reduce_sum(simplified), x)])
    np.testing.assert_allclose(mg.Session().run(grad_after, {x: value}), mg.Session().run(grad_before, {x: value}), rtol=1e-13)


@pytest.mark.parametrize("label_kind", ["int", "soft"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_loss_and_its_gradient_share_one_log_softmax_with_the_same_bits(label_kind, dtype):
    """cross_entropy_from_log_softmax, then CSE: one log_softmax for the loss and its gradient op, the
    values bit for bit, and the rewritten graph still differentiable (first and second order)."""
    assert cross_entropy_from_log_softmax in RULES[mg.ops.SoftmaxCrossEntropy]
    rng = np.random.default_rng(0)
    x = mg.placeholder("x", (4, 3), dtype)
    value = (rng.standard_normal((4, 3)) * 3).astype(dtype)
    labels = rng.integers(0, 3, 4) if label_kind == "int" else rng.dirichlet(np.ones(3), 4).astype(dtype)
    loss = mg.reduce_mean(mg.softmax_cross_entropy(x * 2.0, mg.constant(labels)))
    grad = mg.gradients(loss, x)
    shared = passes.eliminate_common_subexpressions(passes.simplify([loss, grad]))
    kinds = Counter(n.op.name for n in nodes_of(shared))
    assert kinds["log_softmax"] == 1 and kinds["softmax_cross_entropy"] == kinds["softmax_cross_entropy_grad"] == 1
    assert all(n.op.from_log_softmax for n in nodes_of(shared) if n.op.name.startswith("softmax_cross_entropy"))
    for before, after in zip(mg.Session().run([loss, grad], {x: value}), mg.Session().run(shared, {x: value})):
        assert np.array_equal(before, after)
    if dtype == "float64":
        weights = mg.constant(np.linspace(-1, 1, 12).reshape(4, 3))
        check_gradients(shared[0] + mg.reduce_sum(shared[1] * weights), [x], {x: value})


def test_the_shared_log_softmax_keeps_the_errors_names_and_integer_logits():
    """Optimized, a bad label is reported as in the graph as built (the loss's name, the logits' name), and
    integer logits give the same float values."""
    z = mg.placeholder("scores", (None, 4))
    labels = mg.placeholder("labels", (None,), "int64")
    loss = mg.reduce_mean(mg.softmax_cross_entropy(z * 2.0, labels, name="xent"))
    grad = mg.gradients(loss, z)
    value = np.arange(8, dtype=np.float32).reshape(2, 4)
    for bad in (np.array([1, 7]), np.array([1, 2, 3])):
        messages = []
        for optimize in (False, True):
            with pytest.raises((ValueError, mg.ShapeError)) as error:
                mg.Session(optimize=optimize).run([loss, grad], {z: value, labels: bad})
            messages.append(str(error.value))
        assert messages[0] == messages[1] and "'xent'" in messages[0] and "'mul" in messages[0], messages
    counts = mg.placeholder("counts", (None, 3), "int64")
    int_loss = mg.softmax_cross_entropy(counts, mg.constant(np.array([0, 2])))
    feed = {counts: np.array([[1, 2, 3], [4, 0, 9]])}
    as_built, optimized = mg.Session().run(int_loss, feed), mg.Session(optimize=True).run(int_loss, feed)
    assert int_loss.dtype == np.float64 and optimized.dtype == np.float64 and np.array_equal(as_built, optimized)


def test_relu_grad_reads_the_relu_so_that_the_layer_fuses():
    x, value = float64_input()
    value = value - 1.25  # both signs
    W = mg.constant(np.linspace(-1, 1, 9).reshape(3, 3))
    pre = x @ W + 1.0
    hidden = mg.relu(pre)
    loss = mg.reduce_sum(hidden * hidden)
    grad = mg.gradients(loss, x)
    simplified = passes.eliminate_common_subexpressions(passes.simplify([hidden, grad]))
    mask_input = next(n for n in nodes_of(simplified) if n.op.name == "relu_grad").inputs[1]
    assert mask_input is simplified[0] and mask_input.op.name == "relu"
    assert ["matmul", "add", "relu"] in [[n.op.name for n in g] for g in passes.find_fusable_groups(simplified)]
    for before, after in zip(mg.Session().run([hidden, grad], {x: value}), mg.Session().run(simplified, {x: value})):
        assert np.array_equal(before, after)
    check_gradients(mg.reduce_sum(simplified[1] * simplified[1]), [x], {x: value})


def test_transposes_compose_and_rules_respect_broadcasting_and_dtypes():
    x = mg.placeholder("x", (2, 3, 4))
    (composed,) = passes.simplify([mg.transpose(mg.transpose(x, (1, 0, 2)), (0, 2, 1))])
    assert composed.op.name == "transpose" and composed.inputs[0] is x and composed.op.axes == (1, 2, 0)
    row = mg.placeholder("row", (4,))
    kept = [row * mg.constant(np.ones((3, 4), np.float32)),  # a larger result: not the row
            row + mg.constant(np.zeros(4)),  # float64 zeros: a float64 result
            row * mg.constant(np.array([1.0, 1.0, 2.0, 1.0], np.float32))]
    assert passes.simplify(kept) == kept
    value = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert np.array_equal(mg.Session().run(composed, {x: value}), value.transpose(1, 2, 0))


def test_log_of_softmax_is_rewritten_when_built_and_by_simplify_with_one_definition():
    z = mg.placeholder("z", (None, 3))
    assert mg.log(mg.softmax(z)).op.name == "log_softmax"  # chapter 02's TF-1 program relies on this
    hidden = mg.log(mg.softmax(z) * 1.0)  # x * 1 hides the softmax from mg.log
    assert hidden.op.name == "log"
    (rewritten,) = passes.simplify([hidden])
    assert rewritten.op.name == "log_softmax" and rewritten.inputs[0] is z
    big = np.array([[0.0, 1000.0, -1000.0]], np.float32)
    with np.errstate(divide="ignore"):
        assert np.isneginf(mg.Session().run(hidden, {z: big})).any()
    assert np.isfinite(mg.Session().run(rewritten, {z: big})).all()


def test_rules_can_be_extended_and_a_bad_rule_is_named():
    x = mg.placeholder("x", (3,))
    y = mg.relu(mg.relu(x))

    def relu_of_relu(node):
        return node.inputs[0] if node.inputs[0].op.name == "relu" else None

    rules = {**RULES, mg.ops.Relu: [relu_of_relu]}
    (simplified,) = passes.simplify([y], rules=rules)
    assert simplified.op.name == "relu" and simplified.inputs[0] is x
    with pytest.raises(ValueError, match="rule widen replaced .* a rule must return a node of the same dtype and shape"):
        passes.simplify([y], rules={mg.ops.Relu: [widen]})
    with pytest.raises(RuntimeError, match="rewrote .* 100 times without end"):
        passes.simplify([y], rules={mg.ops.Relu: [lambda node: mg.relu(node.inputs[0])]})


def widen(node):
    return mg.broadcast_to(node, (2, 3))


# ---------------------------------------------------------------------------------------------- fusion


def test_fusable_groups_are_single_consumer_trees_of_one_shape():
    x = mg.placeholder("x", (None, 4))
    b = mg.placeholder("b", (4,))
    u = mg.tanh(x * 2.0 + b)  # mul, add, tanh: one group (b broadcasts into it)
    shared = mg.exp(u)  # two consumers: the root of its own group
    y = shared * 3.0 - shared
    scalar = mg.reduce_sum(y) * 2.0  # another shape: the reduction is not elementwise
    groups = passes.find_fusable_groups([y, scalar])
    names = sorted([n.op.name for n in group] for group in groups)
    assert names == [["mul", "add", "tanh", "exp"], ["mul", "sub"]]
    assert passes.find_fusable_groups([y, u]) and all(u not in group[:-1] for group in passes.find_fusable_groups([y, u]))


def test_fusion_takes_a_learners_groups_and_checks_them():
    x = mg.placeholder("x", (None, 4))
    u = x * 2.0
    v = mg.tanh(u)
    y = v + u  # u has two consumers
    e = mg.exp(y)
    z = e - 1.0
    groups = passes.find_fusable_groups([z])
    (by_default,) = passes.fuse_elementwise([z])
    (by_learner,) = passes.fuse_elementwise([z], find_groups=lambda fetches: [list(g) for g in groups])
    assert by_learner.op.source.replace(by_learner.name, "") == by_default.op.source.replace(by_default.name, "")
    total = mg.reduce_sum(v)
    bad = {"two or more nodes": [[z]], "two or more nodes that the fetches reach": [[u, mg.exp(x)]],
           "each in one group only": [[e, z], [e, z]], "topological order": [[z, e]],
           "is used outside the group": [[u, v, y]], "has no kernel": [[v, total]]}
    for message, found in bad.items():
        with pytest.raises(ValueError, match=f"fuse_elementwise: cannot fuse group .*{message}"):
            passes.fuse_elementwise([z, total], find_groups=lambda f: found)
    W = mg.Variable(np.ones((2, 2), np.float32), name="W")
    swap = mg.assign(W, mg.transpose(W) * 2.0)
    with pytest.raises(ValueError, match="writes <variable 'W'.* block by block but reads a view of it"):
        passes.fuse_elementwise([swap], find_groups=lambda f: [[swap.inputs[1], swap]])


def test_a_fused_kernel_is_generated_source_readable_from_the_node():
    x = mg.placeholder("x", (None, 4))
    b = mg.placeholder("b", (4,))
    y = mg.relu(x * 0.5 + b)
    (fused,) = passes.fuse_elementwise([y])
    _, half, mul, _, add, relu = mg.topological_sort([y])
    assert fused.op.name == "fused(mul, add, relu)" and fused.inputs == (x, half, b) and fused.op.group == (mul, add, relu)
    source = fused.op.source
    for line in (f"def fused_{relu.name}(x0, x1, x2):", "for o, b0 in blocks(out, x0):", f"np.multiply(b0, x1, out=o)  # {mul.name}",
                 f"np.add(o, x2, out=o)  # {add.name}", f"np.maximum(o, np.zeros(o.shape, o.dtype), out=o)  # {relu.name}", "x1 = 0.5 (float32)",
                 "x2 = 'b' (4,)", "out = np.empty(x0.shape, np.float32)"):
        assert line in source, source
    assert inspect.getsource(fused.op.function) == source
    value, bias = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4), np.float32([1, -1, 0, 2])
    assert np.array_equal(mg.Session().run(fused, {x: value, b: bias}), np.maximum(value * np.float32(0.5) + bias, 0))
    assert "fused(mul, add, relu)" in mg.draw(fused).source


def test_fusion_computes_large_outputs_block_by_block_with_broadcast_inputs():
    x = mg.placeholder("x", (None, 1000))
    b = mg.placeholder("b", (1000,))
    column = mg.placeholder("column", (None, 1))
    y = mg.sigmoid((x - b) * column) / (x * x + 1.0)  # two operands computed in the group: a temporary
    (fused,) = passes.fuse_elementwise([y])
    assert "t0 = np.empty(o.shape, np.float32)" in fused.op.source and "for o, b0, b2 in blocks(out, x0, x2):" in fused.op.source
    rng = np.random.default_rng(0)
    feed = {x: rng.standard_normal((2000, 1000), dtype=np.float32), b: rng.standard_normal(1000, dtype=np.float32),
            column: rng.standard_normal((2000, 1), dtype=np.float32)}
    out = np.empty((2000, 1000), np.float32)
    assert len(fusion.blocks(out)) > 10
    assert np.array_equal(mg.Session().run(fused, feed), mg.Session().run(y, feed))


def test_a_large_update_with_a_head_is_written_block_by_block_into_the_variable():
    x, g = mg.placeholder("x", (None, 1100)), mg.placeholder("g", (None, 1000))
    W = mg.Variable(np.linspace(-1, 1, 1_100_000, dtype=np.float32).reshape(1100, 1000), name="W")
    update = mg.assign_sub(W, 0.5 * mg.matmul(x, g, transpose_a=True))  # 1.1 million values: blocked
    (fused,) = passes.fuse_elementwise([update])
    assert "for o, v in blocks(out, h):" in fused.op.source and "np.multiply(x3, v, out=v)" in fused.op.source
    rng = np.random.default_rng(0)
    feed = {x: rng.standard_normal((8, 1100), dtype=np.float32), g: rng.standard_normal((8, 1000), dtype=np.float32)}
    assert np.array_equal(mg.Session().run(fused, feed), mg.Session().run(update, feed))


def test_a_head_op_runs_first_and_its_array_holds_the_output():
    x = mg.placeholder("x", (None, 3))
    W = mg.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="W")
    other = mg.placeholder("other", (None, 2))
    y = mg.relu(x @ W - other)  # other may have more rows at run time: the output is enlarged then
    (fused,) = passes.fuse_elementwise([y])
    assert fused.op.name == "fused(matmul, sub, relu)"
    assert "h = np.matmul(x0, x1)  # matmul" in fused.op.source  # the op's expression, written out
    assert "out = room(h, x2)" in fused.op.source
    feeds = [{x: np.ones((4, 3), np.float32), other: np.arange(8, dtype=np.float32).reshape(4, 2)},
             {x: np.ones((1, 3), np.float32), other: np.arange(8, dtype=np.float32).reshape(4, 2)}]
    for feed in feeds:
        assert np.array_equal(mg.Session().run(fused, feed), mg.Session().run(y, feed))


def test_a_head_is_written_out_as_its_ops_expression_with_the_same_bits_or_else_called():
    rng = np.random.default_rng(0)
    for a_shape, b_shape in [((5, 3), (3, 4)), ((2, 5, 3), (3, 4))]:  # matrices, and a stack of them
        for transpose_a, transpose_b in itertools.product([False, True], repeat=2):
            shapes = [s[:-2] + s[-2:][::-1] if flag else s for s, flag in ((a_shape, transpose_a), (b_shape, transpose_b))]
            a, b = (rng.standard_normal(shape).astype(np.float32) for shape in shapes)
            op = mg.ops.linalg.MatMul(transpose_a, transpose_b)
            written = eval(op.expression.format("a", "b"), {"np": np, "a": a, "b": b})
            assert np.array_equal(written, op.compute(None, (a, b)))
    x = mg.placeholder("x", (None, 3))
    for axis, keepdims in [(0, False), (1, True), (None, False)]:
        node = mg.reduce_sum(x, axis, keepdims=keepdims)
        value = rng.standard_normal((4, 3)).astype(np.float32)
        written = eval(node.op.expression.format("x"), {"x": value})
        assert np.array_equal(written, node.op.compute(node, (value,)))
    (fused,) = passes.fuse_elementwise([mg.log_softmax(x) * 2.0])  # an op without an expression is called
    assert re.search(r"h = log_softmax\w*\(x0\)  # LogSoftmax\(axis=-1\)", fused.op.source)
    value = rng.standard_normal((4, 3)).astype(np.float32)
    assert np.array_equal(mg.Session().run(fused, {x: value}), mg.Session().run(mg.log_softmax(x) * 2.0, {x: value}))


def test_fused_nodes_differentiate_like_the_ops_they_fused():
    x = mg.placeholder("x", (None, 3), "float64")
    b = mg.placeholder("b", (3,), "float64")
    W = mg.Variable(np.linspace(-1, 1, 6).reshape(3, 2), name="W")
    y = mg.sqrt(mg.exp(mg.tanh(x * b) * 0.5) + x * x) @ W
    (fused_y,) = passes.fuse_elementwise([y])
    assert any(isinstance(n.op, passes.FusedElementwise) for n in nodes_of([fused_y]))
    weights = mg.constant(np.linspace(-2, 2, 8).reshape(4, 2))
    feed = {x: np.random.default_rng(0).standard_normal((4, 3)), b: np.array([0.5, -1.0, 2.0])}
    total = mg.reduce_sum(fused_y * weights)
    check_gradients(total, [x, b, W], feed)
    grads = mg.gradients(total, [x, b])
    second = mg.reduce_sum(grads[0] * mg.constant(np.ones((4, 3)))) + mg.reduce_sum(grads[1])
    check_gradients(second, [x, b], feed)
    expected = mg.Session().run(mg.gradients(mg.reduce_sum(y * weights), [x, b, W]), feed)
    for e, g in zip(expected, mg.Session().run(mg.gradients(total, [x, b, W]), feed)):
        np.testing.assert_allclose(g, e, rtol=1e-12)
    assert mg.Session().run(mg.jvp(total, [x], [np.ones((4, 3))]), feed) == pytest.approx(
        mg.Session().run(mg.jvp(mg.reduce_sum(y * weights), [x], [np.ones((4, 3))]), feed))
    layer = mg.tanh(x @ mg.Variable(np.linspace(-1, 1, 6).reshape(3, 2), name="V") + 0.5)  # a matmul head
    (fused_layer,) = passes.fuse_elementwise([layer])
    assert fused_layer.op.name == "fused(matmul, add, tanh)"
    check_gradients(mg.reduce_sum(fused_layer * weights), [x, fused_layer.inputs[1]], feed)


def test_an_assign_joins_its_value_group_unless_an_input_is_a_view_of_its_variable():
    W = mg.Variable(np.arange(9, dtype=np.float32).reshape(3, 3), name="W")
    g = mg.placeholder("g", (3, 3))
    update = mg.assign_sub(W, 0.5 * g * g)
    (fused,) = passes.fuse_elementwise([update])
    assert fused.op.name == "fused(mul, mul, assign_sub)" and fused.op.mutates and fused.inputs[0] is W
    assert "out = x0" in fused.op.source and "np.subtract(out, t0, out=out, casting='same_kind')" in fused.op.source
    swap = mg.assign(W, mg.transpose(W) * 2.0 + 1.0)  # block by block, W would be read after being written
    (not_fused,) = passes.fuse_elementwise([swap])
    assert not_fused.op.name == "assign" and not_fused.inputs[1].op.name == "fused(mul, add)"
    decay = mg.assign(W, 0.5 * W + g)  # W read once, by the first op: computed in W's own buffer
    twice = mg.assign(W, W * W + W)  # W read twice: computed aside, then copied
    assert "copyto" not in passes.fuse_elementwise([decay])[0].op.source
    assert "np.copyto(out, t0, casting='same_kind')" in passes.fuse_elementwise([twice])[0].op.source
    feed = {g: np.full((3, 3), 2.0, np.float32)}
    for fetches in ([update, W * 1.0], [swap], [W, swap], [decay], [twice, W]):
        plain, optimized = mg.Session(), mg.Session(optimize=True)
        for _ in range(3):
            expected, got = plain.run(fetches, feed), optimized.run(fetches, feed)
            assert all(np.array_equal(e, o) for e, o in zip(expected, got))


# ---------------------------------------------------------------------------------------------- sessions


def test_session_and_executor_take_optimize():
    x, y, loss, step = adam_mlp(hidden=16)
    assert mg.Executor([loss, step]).computed == [loss, step]
    optimized = mg.Executor([loss, step], optimize=True).computed
    assert len(nodes_of(optimized)) < 0.75 * len(nodes_of([loss, step]))
    seen = []

    def my_pipeline(fetches):
        seen.append(list(fetches))
        return passes.eliminate_common_subexpressions(fetches)

    sess = mg.Session(optimize=my_pipeline)
    feed = {x: np.zeros((2, 784), np.float32), y: np.array([1, 2])}
    sess.run([loss, step], feed)
    sess.run([loss, step], feed)  # compiled once per fetch set
    assert seen == [[loss, step]]
    with pytest.raises(TypeError, match="optimize must be True, False or a function fetches -> fetches, not 'yes'"):
        mg.Session(optimize="yes").run(loss, feed)
    with pytest.raises(ValueError, match="short_pass returned 1 nodes for 2 fetches"):
        mg.Session(optimize=short_pass).run([loss, step], feed)


def test_a_session_runs_an_optimized_graph_as_one_generated_function():
    x, y, loss, step = adam_mlp(hidden=16)
    feed = {x: np.linspace(0, 1, 2 * 784, dtype=np.float32).reshape(2, 784), y: np.array([1, 2])}
    optimized, threaded, plain = mg.Session(optimize=True), mg.Session(optimize=True, workers=2), mg.Session()
    losses = [[sess.run([loss, step], feed)[0] for sess in (optimized, threaded, plain)]]
    compiled = next(iter(optimized._executors.values()))
    assert type(compiled) is CompiledExecutor
    assert [type(next(iter(s._executors.values()))).__name__ for s in (threaded, plain)] == ["ThreadedExecutor", "Executor"]
    assert inspect.getsource(compiled.program) == compiled.source
    lines = compiled.source.splitlines()
    assert lines[0] == "def program(v):" and f"{loss.name!r}, {step.name!r}" in lines[1]
    computed = [node for _, node, _, _ in compiled._steps if node is not None]
    assert len(lines) == 4 + len(compiled._steps)  # the header, then one line per step
    assert sum(line.endswith(" = None") for line in lines) == len(compiled._steps) - len(computed)  # frees
    fused = [node for node in computed if isinstance(node.op, fusion.FusedElementwise)]
    called = [node for node in computed if node not in fused]
    first_kernel, first_call = (next(line for line in lines if f" = {text}(" in line)
                                for text in (fused[0].op.function.__name__, "c0"))
    described = {node: node.name if node.name == node.op.name else f"{node.name}: {node.op.name}" for node in computed}
    assert first_kernel.endswith(f"# {described[fused[0]]}") and first_kernel.startswith("    v[")
    assert first_call.endswith(f"# {described[called[0]]}") and "c0(n0, " in first_call
    assert compiled.program.__globals__[fused[0].op.function.__name__] is fused[0].op.function
    interpreted = mg.Executor(compiled.computed)  # the same optimized graph, its steps interpreted
    assert compiled.order == interpreted.order
    losses[0].append(interpreted.run(feed)[0])  # it keeps its own variables, from their initial values
    losses.append([sess.run([loss, step], feed)[0] for sess in (optimized, threaded, plain)] + [interpreted.run(feed)[0]])
    assert all(value == run[0] for run in losses for value in run) and losses[0][0] != losses[1][0]
    assert all(np.array_equal(optimized.run(var), plain.run(var)) for var in mg.trainable_variables([loss]))
    only_a_feed = CompiledExecutor([x])  # no step at all: the feed is returned as it is
    assert only_a_feed.source.count("\n") == 4 and only_a_feed.run(feed)[0] is feed[x]


def test_fused_kernels_whose_names_clash_each_keep_their_own_name_in_the_program():
    x = mg.placeholder("x", (None, 3))
    first = mg.sigmoid(x * 2.0 + 1.0, name="y_2")
    second = mg.relu(first * 3.0 + 1.0, name="y")  # its kernel, fused_y, and the next one's clash;
    third = mg.relu(second * 5.0 - 1.0, name="y")  # renamed fused_y_2, the third would call the first
    compiled = CompiledExecutor([first, second, third], optimize=True)
    assert [line.split(" = ")[1].split("(")[0] for line in compiled.source.splitlines()[4:]] == \
        ["fused_y_2", "fused_y", "fused_y_1"]
    feed = {x: np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)}
    assert all(np.array_equal(a, b) for a, b in zip(compiled.run(feed), mg.Executor([first, second, third]).run(feed)))


def test_an_error_in_a_compiled_program_names_the_node_that_raised_it():
    x, y, loss, step = adam_mlp(hidden=16)
    sess = mg.Session(optimize=True)
    feed = {x: np.zeros((2, 784), np.float32), y: np.array([1, 12])}
    with pytest.raises(ValueError, match="hold 12, but the logits") as error:
        sess.run([loss, step], feed)
    (note,) = error.value.__notes__
    assert re.fullmatch(r"minigraph: raised while computing softmax_cross_entropy node 'softmax_cross_entropy(_\d+)?' \(None,\)", note)
    a, b = mg.placeholder("a", (None, None)), mg.placeholder("b", (None, None))
    product = mg.relu(a @ b + 1.0)
    with pytest.raises(ValueError) as error:  # numpy's matmul refuses (2, 3) @ (4, 5), in a fused kernel
        mg.Session(optimize=True).run(product, {a: np.ones((2, 3)), b: np.ones((4, 5))})
    assert "raised while computing fused(matmul, add, relu) node" in error.value.__notes__[0]


def test_draw_pair_marks_what_changed():
    x = mg.placeholder("x", (None, 3))
    y = mg.tanh(x * 1.0 + 2.0) * 3.0
    pair = passes.draw_pair([y], passes.optimize([y]), rankdir="LR")
    assert repr(pair) == "<before: 8 nodes, after: 4 nodes>"
    assert pair.before.source.count(passes.drawing.GONE["color"]) == 5  # 1.0, both mul, add, tanh
    assert passes.drawing.FUSED["fillcolor"] in pair.after.source and "before: 8 nodes" in pair.before.source
    svg = pair._repr_svg_()  # one image, the two drawings side by side
    assert svg.count("<svg") == 3 and svg.count('class="graph"') == 2 and "<?xml" not in svg
