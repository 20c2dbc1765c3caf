"""Every pass against the graph as built, on random graphs (hypothesis): the same values — bit for bit for
dead code, folding, common subexpressions and the exact simplification rules, to float tolerance for
fusion and the whole pipeline — and the pass contract (same length, sources kept, the input untouched).

The graphs mix what the passes look for: duplicated subexpressions, constant subtrees, identities such as
``x * 1`` and ``transpose(transpose(x))``, reductions, broadcasting of rows, vectors and scalars, matrix
products, and the gradients of the whole thing.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import minigraph as mg
from minigraph import passes
from minigraph.passes.algebra import RULES, log_of_exp, log_of_softmax_rule
from minigraph.passes.program import CompiledExecutor

N, M = 3, 4  # the random graphs' values have shapes (N, M), (1, M), (M,) or ()

BUILDERS = [  # (arity, builder): results broadcast against each other
    (2, lambda a, b: a + b),
    (2, lambda a, b: a - b),
    (2, lambda a, b: a * b),
    (2, lambda a, b: a / (b * b + 1.0)),
    (1, mg.tanh),
    (1, lambda a: mg.exp(a * 0.25)),
    (1, mg.sigmoid),
    (1, mg.relu),
    (1, lambda a: -a),
    (1, lambda a: a**2),
    (1, lambda a: mg.sqrt(a * a + 1.0)),
    (1, lambda a: a * 1.0),
    (1, lambda a: 1.0 * a + 0.0),
    (1, lambda a: (a - 0.0) / 1.0),
    (1, lambda a: -(-a)),
    (1, lambda a: mg.transpose(mg.transpose(a))),
    (1, lambda a: mg.reshape(mg.reshape(a, (-1,)), a)),
    (1, lambda a: mg.log(mg.exp(a * 0.5))),
    (1, lambda a: mg.log(mg.softmax(mg.broadcast_to(a, (N, M))) * 1.0)),
    (1, lambda a: mg.reduce_sum(a, 0, keepdims=True) if a.shape else a * 2.0),
    (1, lambda a: mg.reduce_mean(a)),
    (1, lambda a: mg.matmul(mg.broadcast_to(a, (N, M)), mg.constant(np.linspace(-1, 1, M * M).reshape(M, M)), transpose_b=True)),
]


@st.composite
def graphs(draw):
    """A recipe: steps ``(builder, operand, operand)``, earlier steps built again on the same operands, and
    which nodes to fetch."""
    steps = draw(st.lists(st.tuples(st.integers(0, len(BUILDERS) - 1), st.integers(0, 50), st.integers(0, 50)), min_size=3, max_size=12))
    repeats = draw(st.lists(st.integers(0, 50), max_size=3))  # a step built again: a common subexpression
    fetched = draw(st.lists(st.integers(0, 50), min_size=1, max_size=3))
    return steps, repeats, fetched, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


def build(recipe, dtype="float64"):
    """The graph of a recipe: its fetches, its placeholders and a feed for them."""
    steps, repeats, fetched, with_gradients, seed = recipe
    rng = np.random.default_rng(seed)
    x = mg.placeholder("x", (None, M), dtype)
    v = mg.placeholder("v", (M,), dtype)
    feed = {x: rng.uniform(-2, 2, (N, M)).astype(dtype), v: rng.uniform(-2, 2, M).astype(dtype)}
    constants = [mg.constant(rng.uniform(-2, 2, M).astype(dtype)), mg.constant(np.array(0.5, dtype)), mg.constant(np.array(0.5, dtype))]
    nodes = [x, v, *constants, constants[0] * constants[1] + 1.0]  # the last one: a constant subtree
    made = []
    for builder, i, j in steps:
        arity, make = BUILDERS[builder]
        operands = [pick(nodes, i), pick(nodes, j)][:arity]
        made.append((make, operands))
        nodes.append(make(*operands))
    for r in repeats:
        make, operands = made[r % len(made)]
        nodes.append(make(*operands))
    fetches = [pick(nodes[5:], f) for f in fetched]
    if with_gradients:
        total = mg.reduce_sum(mg.broadcast_to(nodes[-1], (N, M)) * mg.constant(rng.uniform(-1, 1, (N, M)).astype(dtype)))
        fetches += mg.gradients(total, [x, v])
    return fetches, feed


def pick(nodes, index):
    """One of the last three nodes for an index below 30 (so that chains form), else any node."""
    return nodes[-1 - index % min(3, len(nodes))] if index < 30 else nodes[index % len(nodes)]


def snapshot(fetches):
    """Every node of the graph with its op and inputs, to check that a pass changed none of them."""
    return [(node, node.op, node.inputs) for node in mg.topological_sort(fetches)]


def run_both(recipe, graph_pass, dtype="float64"):
    fetches, feed = build(recipe, dtype)
    before = snapshot(fetches)
    optimized = graph_pass(list(fetches))
    assert snapshot(fetches) == before, "the pass changed the graph it was given"
    assert len(optimized) == len(fetches)
    sources = [n for n in mg.topological_sort(optimized) if isinstance(n, (mg.Placeholder, mg.Variable))]
    assert all(any(s is n for n in mg.topological_sort(fetches)) for s in sources), "placeholders must stay the same objects"
    return mg.Session().run(fetches, feed), mg.Session().run(optimized, feed)


EXACT_RULES = {op: [rule for rule in rules if rule not in (log_of_exp, log_of_softmax_rule)] for op, rules in RULES.items()}
EXACT_PASSES = {
    "eliminate_dead_code": passes.eliminate_dead_code,
    "fold_constants": passes.fold_constants,
    "eliminate_common_subexpressions": passes.eliminate_common_subexpressions,
    "simplify": lambda fetches: passes.simplify(fetches, rules=EXACT_RULES),
}
RANDOM = settings(max_examples=40, deadline=None)


@RANDOM
@given(recipe=graphs())
def test_exact_passes_keep_values_bit_for_bit(recipe):
    for name, graph_pass in EXACT_PASSES.items():
        expected, got = run_both(recipe, graph_pass)
        for e, g in zip(expected, got):
            assert e.dtype == g.dtype and np.array_equal(e, g), name  # x + 0 -> x may turn +0.0 into -0.0: equal


@RANDOM
@given(recipe=graphs(), dtype=st.sampled_from(["float32", "float64"]))
def test_fusion_and_the_default_pipeline_keep_values(recipe, dtype):
    fetches, _ = build(recipe, dtype)
    passes.fusion.check_groups(passes.find_fusable_groups(fetches), fetches)  # what fuse_elementwise trusts
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for graph_pass in (passes.fuse_elementwise, passes.optimize):
        expected, got = run_both(recipe, graph_pass, dtype)
        for e, g in zip(expected, got):
            assert e.dtype == g.dtype and e.shape == g.shape
            np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)


@RANDOM
@given(recipe=graphs(), optimize=st.booleans(), memory=st.sampled_from(["plan", "naive"]))
def test_a_compiled_program_computes_what_the_executor_does_bit_for_bit(recipe, optimize, memory):
    fetches, feed = build(recipe, "float32")
    compiled = CompiledExecutor(fetches, optimize=optimize, memory=memory)
    interpreted = mg.Executor(compiled.computed, memory=memory)  # the same graph, its steps one by one
    assert [node.op.name for node in compiled.order] == [node.op.name for node in interpreted.order]  # snapshots are new
    for expected, got in zip(interpreted.run(feed), compiled.run(feed)):
        assert expected.dtype == got.dtype and np.array_equal(expected, got, equal_nan=True)


@RANDOM
@given(recipe=graphs())
def test_passes_are_idempotent_once_the_graph_is_optimized(recipe):
    fetches, _ = build(recipe)
    optimized = passes.optimize(fetches)
    for graph_pass in (passes.eliminate_dead_code, passes.fold_constants, passes.simplify, passes.eliminate_common_subexpressions):
        again = graph_pass(optimized)
        assert all(a is b for a, b in zip(again, optimized)), f"{graph_pass.__name__} found more to do"


UNARY = [mg.tanh, mg.sigmoid, mg.relu, lambda a: -a, lambda a: a**2, lambda a: mg.exp(a * 0.25), lambda a: mg.sqrt(a * a + 1.0)]
BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (b * b + 1.0)]
LEAVES = {"x": (None, 5), "row": (5,), "column": (None, 1), "scalar": ()}
trees = st.recursive(
    st.sampled_from(sorted(LEAVES)),
    lambda children: st.one_of(st.tuples(st.integers(0, len(UNARY) - 1), children),
                               st.tuples(st.integers(0, len(BINARY) - 1), children, children)),
    max_leaves=10)


def build_tree(tree, leaves):
    """An expression tree of elementwise ops in which every value is used once (one fusable group)."""
    if isinstance(tree, str):
        return leaves[tree]
    if len(tree) == 2:
        return UNARY[tree[0]](build_tree(tree[1], leaves))
    return BINARY[tree[0]](build_tree(tree[1], leaves), build_tree(tree[2], leaves))


@settings(max_examples=60, deadline=None)
@given(tree=trees, rows=st.sampled_from([3, 300_000]), seed=st.integers(0, 2**32 - 1))
def test_generated_kernels_compute_any_expression_tree(tree, rows, seed):
    """The kernel generator's buffers (output, head, temporaries) on trees of every shape, with inputs that
    broadcast (rows, columns, scalars) — and, for 300,000 rows, block by block."""
    rng = np.random.default_rng(seed)
    leaves = {name: mg.placeholder(name, shape, "float64") for name, shape in LEAVES.items()}
    feed = {leaves[name]: rng.uniform(-2, 2, [rows if d is None else d for d in shape]) for name, shape in LEAVES.items()}
    y = build_tree(tree, leaves) + leaves["x"]  # the result always has the shape of x
    (fused,) = passes.fuse_elementwise([y])
    kernels = [n for n in mg.topological_sort([fused]) if isinstance(n.op, passes.FusedElementwise)]
    assert len(kernels) == len(passes.find_fusable_groups([y])) and (kernels or len(mg.topological_sort([y])) < 8)
    np.testing.assert_allclose(mg.Session().run(fused, feed), mg.Session().run(y, feed), rtol=1e-13, atol=1e-13)
