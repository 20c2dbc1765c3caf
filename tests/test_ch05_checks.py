"""The checks of chapter 05: the reference solutions pass, the stubs are "not implemented yet", typical wrong
answers fail with a message that names the mistake, and minigraph's own passes are refused.

The reference solutions are the exercise cells of solutions/05_graph_optimization.ipynb, whose nbval run
shows them all passing (5.5's MNIST training included). Here the training of 5.5 is replaced by a stub, so
that everything the check compares before it is tested quickly.
"""

import functools

import numpy as np
import pytest

import minigraph as mg
from minigraph import passes
from minigraph.checks import ch05
from minigraph.passes import rebuild, rewrite

from solution_code import solution_namespace


@pytest.fixture(scope="module")
def solved():
    """The solution notebook's imports and exercise cells (its other cells use what the checks return)."""
    return solution_namespace("05_graph_optimization.ipynb", runs=lambda source: source.startswith(("import", "def ")))


HISTORY = {"epoch": [1, 2, 3], "train_loss": [0.3, 0.2, 0.1], "train_acc": [0.9, 0.95, 0.97],
           "test_loss": [0.3, 0.2, 0.12], "test_acc": [0.9, 0.95, 0.96]}
WEIGHTS = [("hidden/W", np.ones((2, 2), np.float32))]


@pytest.fixture
def no_mnist_training(monkeypatch):
    """Exercise 5.5 without its two MNIST runs: both give the same fixed history and weights."""
    monkeypatch.setattr(ch05, "_train_both", lambda pipeline: ((HISTORY, WEIGHTS), (dict(HISTORY), WEIGHTS)))


def answers(solved, exercise):
    """The reference answer(s) of an exercise, as check() takes them."""
    names = {"5.1": ["eliminate_dead_code"], "5.2": ["fold_constants"],
             "5.3": ["node_key", "eliminate_common_subexpressions"], "5.4": ["times_one"],
             "5.5": ["find_fusable_groups", "my_pipeline"]}[exercise]
    return [solved[name] for name in names]


# ---------------------------------------------------------------------------------------------- 5.1 mistakes


def effects(fetches, stateful=lambda node: node.op.stateful):
    effect = {}
    for node in mg.topological_sort(fetches):
        effect[node] = stateful(node) or any(effect[x] for x in node.inputs)
    return effect


def dead_code_pass(keep):
    """A dead-code pass that keeps the inputs ``keep(old_input, effect)`` of every group."""
    def eliminate_dead_code(fetches):
        effect = effects(fetches)

        def replace(node, inputs):
            if isinstance(node.op, mg.ops.Group):
                inputs = [new for old, new in zip(node.inputs, inputs) if keep(old, effect)]
            return rebuild(node, inputs)

        return rewrite(fetches, replace)
    return eliminate_dead_code


def dce_returning_the_fetches(fetches):
    return list(fetches)


dce_looking_at_the_input_only = dead_code_pass(lambda old, effect: old.op.stateful or isinstance(old.op, mg.ops.Group))


def dce_counting_assigns_only(fetches):  # op.mutates: a random draw has no effect, it says
    effect = effects(fetches, stateful=lambda node: node.op.mutates)
    return rewrite(fetches, lambda node, inputs: rebuild(node, [new for old, new in zip(node.inputs, inputs)
                                                                if effect[old]]) if isinstance(node.op, mg.ops.Group)
                   else rebuild(node, inputs))


def dce_editing_the_group(fetches):
    effect = effects(fetches)
    for node in mg.topological_sort(fetches):
        if isinstance(node.op, mg.ops.Group):
            node.inputs = tuple(x for x in node.inputs if effect[x])
    return list(fetches)


def dce_of_fetched_groups_only(fetches):
    effect = effects(fetches)
    return [mg.group(*[x for x in f.inputs if effect[x]], name=f.name) if isinstance(f.op, mg.ops.Group) else f
            for f in fetches]


def dce_dropping_pure_fetches(fetches):
    effect = effects(fetches)
    return [new for old, new in zip(fetches, dead_code_pass(lambda old, effect: effect[old])(fetches)) if effect[old]]


# ---------------------------------------------------------------------------------------------- 5.2 mistakes


def folding_pass(foldable, make=lambda value, node: mg.Constant(value, name=node.name, dtype=node.dtype),
                 catch=True, looks_at_original_inputs=False):
    def fold_constants(fetches):
        def replace(old, inputs):
            node = rebuild(old, inputs)
            if not foldable(node, old.inputs if looks_at_original_inputs else inputs):
                return node
            try:
                value = node.op.compute(node, [x.constant for x in inputs])
            except Exception:
                if not catch:
                    raise
                return node
            return make(value, node)
        return rewrite(fetches, replace)
    return fold_constants


def pure_with_constant_inputs(node, inputs):
    return (inputs and node.dtype is not None and not node.op.stateful
            and all(isinstance(x, mg.Constant) for x in inputs))


def fold_returning_the_fetches(fetches):
    return list(fetches)


fold_deciding_with_node_inputs = folding_pass(pure_with_constant_inputs, looks_at_original_inputs=True)
fold_ignoring_state = folding_pass(lambda node, inputs: inputs and node.dtype is not None
                                   and all(isinstance(x, mg.Constant) for x in inputs))
fold_without_catching_errors = folding_pass(pure_with_constant_inputs, catch=False)
fold_through_python_numbers = folding_pass(pure_with_constant_inputs,
                                           make=lambda value, node: mg.constant(np.asarray(value).tolist()))


def fold_variables_too(fetches):  # a variable's initial value taken for a constant
    def replace(node, inputs):
        node = rebuild(node, inputs)
        sources = [mg.Constant(x.initial_value) if isinstance(x, mg.Variable) else x for x in inputs]
        if pure_with_constant_inputs(node, sources):
            return mg.Constant(node.op.compute(node, [x.constant for x in sources]), dtype=node.dtype)
        return node
    return rewrite(fetches, replace)


# ---------------------------------------------------------------------------------------------- 5.3 mistakes


def parameter_key(value):
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, (tuple, list)):
        return tuple(parameter_key(item) for item in value)
    return (type(value), value)


def key_by_rule(constant_key=lambda c: (c.dtype.str, c.shape, c.constant.tobytes()),
                parameters=lambda node: tuple(sorted((k, parameter_key(v)) for k, v in node.attrs.items())),
                inputs=lambda node: node.inputs, source_key=lambda node: None, stateful_key=lambda node: None):
    def node_key(node):
        if isinstance(node, mg.Constant):
            return ("constant", constant_key(node))
        if not node.inputs:
            return source_key(node)
        if node.op.stateful:
            return stateful_key(node)
        return (type(node.op), parameters(node), inputs(node))
    return node_key


right_key = key_by_rule()
key_of_constant_values = key_by_rule(constant_key=lambda c: (c.dtype.str, c.shape, tuple(c.constant.ravel().tolist())))
key_of_constant_bytes_only = key_by_rule(constant_key=lambda c: c.constant.tobytes())
key_without_parameters = key_by_rule(parameters=lambda node: ())
key_of_stateful_nodes_too = key_by_rule(stateful_key=lambda node: (type(node.op), node.inputs))
key_of_input_names = key_by_rule(inputs=lambda node: tuple(x.name for x in node.inputs),
                                 source_key=lambda node: ("source", node.name))
key_of_variable_values = key_by_rule(source_key=lambda node: (node.dtype.str, node.initial_value.tobytes())
                                     if isinstance(node, mg.Variable) else None)
key_with_the_op_object = key_by_rule(parameters=lambda node: node.op)  # ops are new objects per node


def key_as_a_list(node):
    key = right_key(node)
    return None if key is None else list(key)


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0


def key_always_equal(node):
    return AlwaysEqual()


def cse_pass(node_key, rebuilds=True):
    def eliminate_common_subexpressions(fetches):
        first = {}

        def replace(node, inputs):
            node = rebuild(node, inputs) if rebuilds else node
            key = node_key(node)
            return node if key is None else first.setdefault(key, node)

        return rewrite(fetches, replace)
    return eliminate_common_subexpressions


def cse_returning_the_fetches(fetches):
    return list(fetches)


# ---------------------------------------------------------------------------------------------- 5.4 mistakes


def all_ones(node):
    return isinstance(node, mg.Constant) and bool(np.all(node.constant == 1))


def times_one_by_rule(fits, ones=all_ones, sides=((1, 0), (0, 1)), result=lambda operand, one: operand):
    def times_one(node):
        for one, other in sides:
            one, other = node.inputs[one], node.inputs[other]
            if ones(one) and fits(other, node):
                return result(other, one)
        return None
    return times_one


def right_fit(other, node):
    return other.shape is not None and other.shape == node.shape and other.dtype == node.dtype


times_one_ignoring_broadcasting = times_one_by_rule(lambda other, node: True)
times_one_ignoring_dtypes = times_one_by_rule(lambda other, node: other.shape is not None and other.shape == node.shape)
times_one_trusting_unknown_shapes = times_one_by_rule(lambda o, n: o.shape == n.shape and o.dtype == n.dtype)
times_one_on_the_right_only = times_one_by_rule(right_fit, sides=((1, 0),))
times_one_reading_the_first_entry = times_one_by_rule(
    right_fit, ones=lambda node: isinstance(node, mg.Constant) and node.constant.ravel()[0] == 1)
times_one_building_a_new_product = times_one_by_rule(right_fit, result=lambda operand, one: operand * 1.0)
times_one_returning_the_constant = times_one_by_rule(right_fit, result=lambda operand, one: one)


def times_one_never(node):
    return None


def times_one_broadcast_to(node):
    """Right, and more than asked: broadcast_to(x, shape) stands for x * ones(shape)."""
    for one, other in ((node.inputs[1], node.inputs[0]), (node.inputs[0], node.inputs[1])):
        if not all_ones(one) or other.dtype != node.dtype or other.shape is None:
            continue
        if other.shape == node.shape:
            return other
        if None not in node.shape:
            return mg.broadcast_to(other, node.shape)
    return None


# ---------------------------------------------------------------------------------------------- 5.5 mistakes


def group_finder(joins, fusable=ch05._fusable, count_uses=False, root_first=False, singles=False):
    """A group finder: a node joins its consumer's group when ``joins(node, consumer, fetches)``."""
    def find_fusable_groups(fetches):
        order = mg.topological_sort(fetches)
        consumers = {node: [] for node in order}
        for node in order:
            for x in node.inputs if count_uses else dict.fromkeys(node.inputs):
                consumers[x].append(node)
        root_of, groups = {}, {}
        for node in reversed(order):
            if not fusable(node):
                continue
            consumer = consumers[node][0] if len(consumers[node]) == 1 else None
            joined = consumer in root_of and joins(node, consumer, fetches)
            root_of[node] = root_of[consumer] if joined else node
            groups.setdefault(root_of[node], []).append(node)
        return [group if root_first else group[::-1] for group in groups.values() if len(group) > 1 or singles]
    return find_fusable_groups


def joins_right(node, consumer, fetches):
    return node not in fetches and node.shape == consumer.shape and node.dtype == consumer.dtype


groups_ignoring_shapes_and_dtypes = group_finder(lambda node, consumer, fetches: node not in fetches)
groups_joining_fetched_nodes = group_finder(lambda node, consumer, fetches: joins_right(node, consumer, []))
groups_counting_uses = group_finder(joins_right, count_uses=True)
groups_with_reductions = group_finder(joins_right, fusable=lambda node: node.inputs and node.dtype is not None
                                      and node.dtype.kind == "f" and not node.op.stateful)
groups_root_first = group_finder(joins_right, root_first=True)
groups_of_one_node_too = group_finder(joins_right, singles=True)


def groups_none(fetches):
    return []


def groups_of_two(fetches):
    return [group[-2:] for group in group_finder(joins_right)(fetches)]


def groups_as_sets(fetches):
    return [set(group) for group in group_finder(joins_right)(fetches)]


def _name_the_made_functions(namespace):
    """Give each function a factory made the name of the variable holding it (reports quote it)."""
    for name, value in list(namespace.items()):
        if callable(value) and getattr(value, "__qualname__", "").count("<locals>") and name.islower():
            value.__name__ = name


_name_the_made_functions(globals())


# ---------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("exercise", ["5.1", "5.2", "5.3", "5.4", "5.5"])
def test_the_reference_solution_passes(run_check, solved, no_mnist_training, exercise):
    result, report = run_check(exercise, *answers(solved, exercise))
    assert result, report
    assert report.startswith(f"✓ Exercise {exercise}")


def test_the_summaries_report_the_node_counts_of_the_adam_step(run_check, solved, no_mnist_training):
    assert "the Adam step: 157 → 110 nodes, same training" in run_check("5.3", *answers(solved, "5.3"))[1]
    result, report = run_check("5.5", *answers(solved, "5.5"))
    assert "turns the Adam step's 157 nodes into 67, 15 of them fused kernels" in report
    assert result.value == {"as built": HISTORY, "optimized": HISTORY}


def test_the_right_answers_the_exercise_does_not_ask_for_pass(run_check, solved):
    assert run_check("5.4", times_one_broadcast_to)[0]
    assert run_check("5.3", right_key, cse_pass(right_key))[0]


def stub(exercise):
    def not_yet(*args):
        raise NotImplementedError(f"Exercise {exercise}")
    return not_yet


@pytest.mark.parametrize("exercise", ["5.1", "5.2", "5.3", "5.4", "5.5"])
def test_the_stub_is_not_implemented_yet(run_check, solved, exercise):
    result, report = run_check(exercise, *[stub(exercise)] * len(answers(solved, exercise)))
    assert result.status == "not implemented" and "not implemented yet" in report, report


def test_the_pipeline_of_55_needs_the_earlier_exercises_first(run_check, solved, no_mnist_training):
    def my_pipeline(fetches):
        return stub("5.1")(fetches)

    result, report = run_check("5.5", solved["find_fusable_groups"], my_pipeline)
    assert result.status == "not implemented" and "it needs exercise 5.1 first" in report, report


MISTAKES = [
    # 5.1
    ("5.1", [dce_returning_the_fetches], "group 'step' still runs 'accuracy' (reduce_mean), which has no effect"),
    ("5.1", [dce_looking_at_the_input_only], "dropped 'logged' from group 'step': it is pure itself, but it depends "
     "on 'count' (assign_add), which is stateful"),
    ("5.1", [dce_counting_assigns_only], "dropped 'mask' from group 'step', but it is stateful — a random draw"),
    ("5.1", [dce_editing_the_group], "changed node 'step' of the graph it was given (its inputs were ['update', "
     "'accuracy', 'logged', 'mask'], now ['update', 'logged', 'mask']): a pass never edits a node"),
    ("5.1", [dce_of_fetched_groups_only], "group 'inner' still runs 'accuracy'"),
    ("5.1", [dce_dropping_pure_fetches], "returned 1 nodes for 2 fetches; a pass returns one node per fetch"),
    # 5.2
    ("5.2", [fold_returning_the_fetches], "'twice' (mul) still has only constant inputs: compute it once"),
    ("5.2", [fold_deciding_with_node_inputs], "'shifted' (sub) still has only constant inputs"),
    ("5.2", [fold_ignoring_state], "dropout_mask 'mask' was folded, but it is stateful — a new random mask at every "
     "run"),
    ("5.2", [fold_without_catching_errors], "raised ValueError (softmax_cross_entropy 'bad': the labels 'labels' "
     "hold 5, but the logits 'logits' have 3 classes: labels must lie in [0, 3)) while folding 'bad'"),
    ("5.2", [fold_variables_too], "variable 'v' is gone from the graph fold_variables_too returned"),
    ("5.2", [fold_through_python_numbers], "the value of 'precise' differs from the graph as built in its last "
     "digits: a folded value must be the very array compute returns"),
    # 5.3
    ("5.3", [key_of_constant_values, cse_pass(key_of_constant_values)], "gives these two nodes one key, but they "
     "must differ: 0.0 == -0.0, yet 1 / 0.0 is inf"),
    ("5.3", [key_of_constant_bytes_only, cse_pass(key_of_constant_bytes_only)], "their bytes are the same, their "
     "shapes are not"),
    ("5.3", [key_without_parameters, cse_pass(key_without_parameters)], "input nodes: x ** 2 and x ** 3"),
    ("5.3", [key_of_stateful_nodes_too, cse_pass(key_of_stateful_nodes_too)], "an assign is stateful: two of them "
     "add twice"),
    ("5.3", [key_of_input_names, cse_pass(key_of_input_names)], "two placeholders, both named 'x'"),
    ("5.3", [key_of_variable_values, cse_pass(key_of_variable_values)], "a variable's value changes when it is "
     "assigned"),
    ("5.3", [key_with_the_op_object, cse_pass(key_with_the_op_object)], "should give these two nodes one key: they "
     "compute the same value"),
    ("5.3", [key_as_a_list, cse_pass(key_as_a_list)], "key_as_a_list returned a list, which cannot be a key of a dict"),
    ("5.3", [key_always_equal, cse_pass(key_always_equal)], "input nodes: constants 0.0 and -0.0"),
    ("5.3", [right_key, cse_pass(right_key, rebuilds=False)], "two equal constants remain, 2. (float32, shape ()): "
     "only the first should be left; eliminate_common_subexpressions returned the fetches unchanged, although your "
     "node_key gives them one key: rebuild each node on its rewritten inputs (node = rebuild(node, inputs))"),
    ("5.3", [right_key, cse_returning_the_fetches], "cse_returning_the_fetches returned the fetches unchanged"),
    # 5.4
    ("5.4", [times_one_ignoring_broadcasting], "broadcasting makes the product (3, 4), larger than row (4,)"),
    ("5.4", [times_one_ignoring_dtypes], "the product is float64 (numpy promotes float32 times float64)"),
    ("5.4", [times_one_trusting_unknown_shapes], "the shape of unknown is not known (None)"),
    ("5.4", [times_one_on_the_right_only], "should return the operand 'x' itself: the product equals it input "
     "node: 1 * x"),
    ("5.4", [times_one_reading_the_first_entry], "not every entry of the constant is 1"),
    ("5.4", [times_one_building_a_new_product], "a product again, which simplify would hand to your rule again"),
    ("5.4", [times_one_returning_the_constant], "its shape is (), the product's (None, 4)"),
    ("5.4", [times_one_never], "should return the operand 'x' itself"),
    # 5.5
    ("5.5", [groups_none, "pipeline"], "groups_none found no group with root 'shared'"),
    ("5.5", [groups_ignoring_shapes_and_dtypes, "pipeline"], "is (None, 4) float32 but its consumer 'wide' is (None, "
     "4) float64: a value that broadcasts into the group, or is promoted to another dtype, is an input"),
    ("5.5", [groups_joining_fetched_nodes, "pipeline"], "'u' is fetched: its value must be returned, so it can only "
     "be the root of a group"),
    ("5.5", [groups_counting_uses, "pipeline"], "the group of 'squared' could also hold 'e': its value has one "
     "consumer, 'e_squared'"),
    ("5.5", [groups_with_reductions, "pipeline"], "'total' (reduce_sum) has no kernel (op.kernel is None)"),
    ("5.5", [groups_root_first, "pipeline"], "a group must list its nodes in topological order"),
    ("5.5", [groups_of_one_node_too, "pipeline"], "a group of one node fuses nothing"),
    ("5.5", [groups_of_two, "pipeline"], "the group of 'shared' could also hold 'scaled'"),
    ("5.5", [groups_as_sets, "pipeline"], "each group should be a list of nodes"),
]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("exercise, answer, message", MISTAKES,
                         ids=[f"{e}-{getattr(a[0], '__name__', type(a[0]).__name__)}" for e, a, _ in MISTAKES])
def test_a_typical_mistake_is_named(run_check, solved, no_mnist_training, exercise, answer, message):
    answer = [solved["my_pipeline"] if item == "pipeline" else item for item in answer]
    result, report = run_check(exercise, *answer)
    assert result.status == "failed", report
    assert message in report, report
    assert "hint:" in report


def pipeline_with_the_default_finder(fetches):
    return passes.fuse_elementwise(fetches)


def pipeline_with_minigraphs_finder(fetches):
    return passes.fuse_elementwise(fetches, find_groups=mg.passes.find_fusable_groups)


MINIGRAPHS_FINDER = mg.passes.find_fusable_groups  # an alias, taken before the check runs
FINDER_IN_A_DICT = {"finder": mg.passes.find_fusable_groups}  # out of reach of any renaming


def pipeline_with_an_alias_of_minigraphs_finder(fetches):
    return passes.fuse_elementwise(fetches, find_groups=MINIGRAPHS_FINDER)


def pipeline_with_minigraphs_finder_in_a_dict(fetches):
    return passes.fuse_elementwise(fetches, find_groups=FINDER_IN_A_DICT["finder"])


def pipeline_of_the_default_passes(fetches):
    for graph_pass in passes.DEFAULT_PASSES:
        fetches = graph_pass(fetches)
    return fetches


def pipeline_without_fusion(fetches):
    return passes.eliminate_common_subexpressions(fetches)


def pipeline_losing_a_fetch(fetches):
    return fetches[:1]


NOT_YOURS = "your pipeline's fused kernels are not those that your find_fusable_groups makes on the graph it fused"


@pytest.mark.parametrize("pipeline, message", [
    (pipeline_with_the_default_finder, NOT_YOURS),
    (pipeline_with_minigraphs_finder, NOT_YOURS),
    (pipeline_with_an_alias_of_minigraphs_finder, NOT_YOURS),
    (pipeline_with_minigraphs_finder_in_a_dict, NOT_YOURS),
    (pipeline_of_the_default_passes, NOT_YOURS),
    (pipeline_without_fusion, "your pipeline fused nothing: end it with mg.passes.fuse_elementwise(fetches, "
     "find_groups=find_fusable_groups)"),
    (pipeline_losing_a_fetch, "pipeline_losing_a_fetch returned 1 nodes for 2 fetches"),
])
def test_a_pipeline_must_fuse_with_the_learners_groups(run_check, solved, no_mnist_training, pipeline, message):
    result, report = run_check("5.5", solved["find_fusable_groups"], pipeline)
    assert result.status == "failed" and message in report, report
    assert passes.find_fusable_groups is passes.fusion.find_fusable_groups  # put back after the check
    assert passes.find_fusable_groups.__module__ == "minigraph.passes.fusion"


def test_a_pipeline_may_reach_fuse_elementwise_through_a_reference_of_its_own(run_check, solved,
                                                                               no_mnist_training):
    finder = solved["find_fusable_groups"]
    fuse = functools.partial(mg.passes.fuse_elementwise, find_groups=finder)  # made before the check

    def pipeline_with_a_partial(fetches):
        return fuse(passes.eliminate_common_subexpressions(fetches))

    def pipeline_with_a_default(fetches, fuse=mg.passes.fuse_elementwise):
        return fuse(passes.eliminate_common_subexpressions(fetches), find_groups=finder)

    for pipeline in (pipeline_with_a_partial, pipeline_with_a_default):
        result, report = run_check("5.5", finder, pipeline)
        assert result.status == "passed", report


def test_a_pipeline_that_changes_the_training_curve_is_named(run_check, solved, monkeypatch):
    moved = {**HISTORY, "test_loss": [0.3, 0.2, 0.12000001]}
    monkeypatch.setattr(ch05, "_train_both", lambda pipeline: ((HISTORY, WEIGHTS), (moved, WEIGHTS)))
    result, report = run_check("5.5", *answers(solved, "5.5"))
    assert not result and "history['test_loss'] differs from the graph as built in its last digits" in report, report
    heavier = [("hidden/W", np.full((2, 2), 2.0, np.float32))]
    monkeypatch.setattr(ch05, "_train_both", lambda pipeline: ((HISTORY, WEIGHTS), (HISTORY, heavier)))
    result, report = run_check("5.5", *answers(solved, "5.5"))
    assert not result and "variable 'hidden/W' after training differs" in report, report


@pytest.mark.parametrize("exercise, function", [
    ("5.1", passes.eliminate_dead_code), ("5.2", passes.fold_constants), ("5.4", passes.algebra.times_one)])
def test_the_packages_own_pass_is_refused(run_check, exercise, function):
    result, report = run_check(exercise, function)
    assert not result and "itself, minigraph's own version of what this exercise asks you to write" in report


def test_the_packages_own_functions_are_refused_inside_the_learners_code(run_check, solved, no_mnist_training):
    result, report = run_check("5.1", lambda fetches: passes.eliminate_dead_code(fetches))
    assert not result and "your code called mg.passes.eliminate_dead_code" in report, report
    result, report = run_check("5.1", lambda fetches: passes.optimize(fetches, passes=[passes.eliminate_dead_code]))
    assert not result and "your code called mg.passes.optimize" in report, report
    result, report = run_check("5.3", passes.node_key, solved["eliminate_common_subexpressions"])
    assert not result and "you passed mg.passes.node_key itself" in report, report
    result, report = run_check("5.3", solved["node_key"], lambda fetches: passes.eliminate_common_subexpressions(
        fetches))
    assert not result and "your code called mg.passes.eliminate_common_subexpressions" in report, report
    result, report = run_check("5.4", lambda node: passes.algebra.identity_operand(node, 1))
    assert not result and "your code called mg.passes.algebra.identity_operand" in report, report
    result, report = run_check("5.5", passes.find_fusable_groups, solved["my_pipeline"])
    assert not result and "you passed mg.passes.find_fusable_groups itself" in report, report
    result, report = run_check("5.5", lambda fetches: passes.find_fusable_groups(fetches), solved["my_pipeline"])
    assert not result and "your code called mg.passes.find_fusable_groups" in report, report
    result, report = run_check("5.5", solved["find_fusable_groups"], passes.optimize)
    assert not result and "you passed mg.passes.optimize itself" in report, report


def test_the_checkers_groups_are_the_packages_without_heads_and_assigns():
    """The largest groups the check expects are what the package's finder finds on graphs without a head or an
    assign to add; fuse_elementwise accepts them on the Adam step too."""
    for fetches in ch05._fusion_graphs()[0]:
        expected = sorted(sorted(node.name for node in group) for group in ch05._expected_groups(fetches))
        assert expected == sorted(sorted(node.name for node in group) for group in passes.find_fusable_groups(fetches))
    x, y, loss, accuracy, step = ch05._adam_mlp(hidden=8)
    fetches = passes.eliminate_common_subexpressions([loss, step])
    passes.fusion.check_groups(ch05._expected_groups(fetches), fetches)


def test_the_run_as_built_is_trained_once_and_handed_out_as_copies(monkeypatch):
    runs = []
    monkeypatch.setattr(ch05, "_train", lambda optimize: runs.append(optimize) or ({"test_acc": [0.9]}, []))
    ch05._trained_as_built.cache_clear()
    try:
        (first, _), _ = ch05._train_both("pipeline")
        first["test_acc"].append(0.0)  # a learner changing the history it got back
        (second, _), _ = ch05._train_both("another pipeline")
    finally:
        ch05._trained_as_built.cache_clear()
    assert runs == [False, "pipeline", "another pipeline"] and second == {"test_acc": [0.9]}
