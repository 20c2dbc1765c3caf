"""The checks of chapter 06: the reference solutions of solutions/06_memory.ipynb pass, the stubs are "not
implemented yet", each typical wrong answer gets a report that names the mistake, and the package's own
functions are refused. Exercise 6.6's MNIST training runs in the solution notebook (nbval); here it is replaced
by a fixed history, so that what is checked before the training is tested quickly."""

import math
from collections import defaultdict

import pytest

import minigraph as mg
from minigraph.checks import ch06
from minigraph.memory import after, has_fixed_shape
from minigraph.ops.shape import broadcast_keeps_shape

from solution_code import solution_namespace

FAKE_HISTORY = {"epoch": [1, 2], "train_loss": [0.2, 0.1], "train_acc": [0.95, 0.97], "test_loss": [0.2, 0.1],
                "test_acc": [0.95, 0.97]}


SOLVED = solution_namespace("06_memory.ipynb")
bases, liveness, assign_buffers, can_overwrite, sqrt_checkpoints, recompute, plan = (
    SOLVED[name] for name in ("bases", "liveness", "assign_buffers", "can_overwrite", "sqrt_checkpoints", "recompute",
                              "plan"))


@pytest.fixture
def no_mnist_training(monkeypatch):
    """Exercise 6.6 without its MNIST run: a fixed history stands in for the training."""
    monkeypatch.setattr(ch06, "_train_mnist", lambda planner: FAKE_HISTORY)


REFERENCES = {"6.1": ("bases", "liveness"), "6.2": ("assign_buffers",), "6.3": ("can_overwrite",),
              "6.4": ("sqrt_checkpoints",), "6.5": ("recompute",), "6.6": ("plan",)}


@pytest.mark.parametrize("exercise", sorted(REFERENCES))
def test_the_reference_solution_passes(run_check, no_mnist_training, exercise):
    result, report = run_check(exercise, *(SOLVED[name] for name in REFERENCES[exercise]))
    assert result, report
    assert report.startswith(f"✓ Exercise {exercise}")


def test_the_planner_hands_back_the_history_of_its_training(run_check, no_mnist_training):
    result, report = run_check("6.6", plan)
    assert result.value is FAKE_HISTORY
    assert "1829 KiB instead of 3835 KiB" in report, report


@pytest.mark.parametrize("exercise", sorted(REFERENCES))
def test_a_stub_is_not_implemented_yet(run_check, no_mnist_training, exercise):
    def unfinished(*args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise}")

    answers = [SOLVED[name] for name in REFERENCES[exercise]]
    answers[-1] = unfinished
    result, report = run_check(exercise, *answers)
    assert result.status == "not implemented", report
    assert "not implemented yet" in report


def test_a_planner_before_its_pieces_are_written_says_which_exercise_comes_first(run_check, no_mnist_training):
    namespace = solution_namespace("06_memory.ipynb")
    exec("def liveness(order, fetches):\n    raise NotImplementedError('Exercise 6.1')\n", namespace)
    result, report = run_check("6.6", namespace["plan"])
    assert result.status == "not implemented" and "it needs exercise 6.1 first" in report, report


# ---------------------------------------------------------------------------------------------- 6.1


def bases_where_a_view_is_its_own(order):
    return {node: None if not node.inputs or node.dtype is None else node for node in order}


def bases_where_a_view_takes_its_first_input(order):
    return {node: None if not node.inputs or node.dtype is None
            else node.inputs[0] if node.op.returns_view else node for node in order}


def lifetimes(order, fetches, base, last_reader=max, fetched=True):
    """Liveness with the choices a learner makes: which reader decides, whether fetches count."""
    readers = defaultdict(list)
    for step, node in enumerate(order):
        for x in node.inputs:
            if base[x] is not None:
                readers[base[x]].append(step)
    lifetime = {}
    for step, node in enumerate(order):
        if base[node] is node:
            lifetime[node] = (step, last_reader(readers[node], default=step))
    for fetch in fetches if fetched else ():
        if base[fetch] is not None:
            lifetime[base[fetch]] = (lifetime[base[fetch]][0], len(order))
    return lifetime


def liveness_scanning_each_value(order, fetches):
    return lifetimes(order, fetches, bases(order))


def liveness_without_fetches(order, fetches):
    return lifetimes(order, fetches, bases(order), fetched=False)


def liveness_at_the_first_reader(order, fetches):
    return lifetimes(order, fetches, bases(order), last_reader=min)


def liveness_with_views_as_values(order, fetches):
    return lifetimes(order, fetches, bases_where_a_view_is_its_own(order))


def liveness_of_every_node(order, fetches):
    lifetime = lifetimes(order, fetches, bases(order))
    lifetime.update({node: (step, step) for step, node in enumerate(order) if not node.inputs})
    return lifetime


def liveness_in_topological_sort_order(order, fetches):
    return lifetimes(mg.topological_sort(fetches), fetches, bases(order))


def liveness_where_only_fetched_values_live_on(order, fetches):
    lifetime = lifetimes(order, fetches, bases(order), fetched=False)
    lifetime.update({f: (lifetime[f][0], len(order)) for f in fetches if f in lifetime})
    return lifetime


# ---------------------------------------------------------------------------------------------- 6.2


def greedy(order, lifetime, in_place=None, reuse_when=lambda node: node.op.writes_into and has_fixed_shape(node),
           key=lambda node: (node.shape, node.dtype), take=lambda pool: pool.pop(), release_after=True,
           release_taken_over=False):
    """The greedy assignment, with the knobs a learner turns by mistake."""
    dying = defaultdict(list)
    for value, (born, dies) in lifetime.items():
        dying[dies].append(value)
    buffer, holder, free = {}, [], defaultdict(list)
    for step, node in enumerate(order):
        if not release_after:
            for value in dying[step]:
                free[key(value)].append(buffer[value])
        if node in lifetime:
            x = in_place(node, step) if in_place else None
            pool = free[key(node)]
            if x is not None:
                buffer[node] = buffer[x]
            elif reuse_when(node) and pool:
                buffer[node] = take(pool)
            else:
                buffer[node] = len(holder)
                holder.append(None)
            holder[buffer[node]] = node
        for value in dying[step] if release_after else ():
            if release_taken_over or holder[buffer[value]] is value:
                free[key(value)].append(buffer[value])
    return buffer


def assign_the_oldest_released_buffer(order, lifetime, in_place=None):
    return greedy(order, lifetime, in_place, take=lambda pool: pool.pop(0))


def assign_releasing_before_the_step(order, lifetime, in_place=None):
    return greedy(order, lifetime, in_place, release_after=False)


def assign_by_dtype_only(order, lifetime, in_place=None):
    return greedy(order, lifetime, in_place, key=lambda node: node.dtype)


def assign_a_new_buffer_to_each_value(order, lifetime, in_place=None):
    return {value: number for number, value in enumerate(lifetime)}


def assign_ignoring_in_place(order, lifetime, in_place=None):
    return greedy(order, lifetime, None)


def assign_ignoring_writes_into(order, lifetime, in_place=None):
    return greedy(order, lifetime, in_place, reuse_when=has_fixed_shape)


def assign_ignoring_unknown_dimensions(order, lifetime, in_place=None):
    return greedy(order, lifetime, in_place, reuse_when=lambda node: node.op.writes_into)


def assign_releasing_a_buffer_taken_over_in_place(order, lifetime, in_place=None):
    return greedy(order, lifetime, in_place, release_taken_over=True)


# ---------------------------------------------------------------------------------------------- 6.3


def rule(node, x, step, lifetime, base, *, in_place=True, later=True, dtype=True, shape="broadcast", views=True):
    """The in-place rule, with the conditions a learner forgets switched off."""
    fits = {"broadcast": lambda: broadcast_keeps_shape(x, node), "static": lambda: x.shape == node.shape}[shape]
    return bool((not in_place or node.op.in_place) and base[x] is x
                and (lifetime[x][1] == step if later else lifetime[x][1] >= step)
                and (not dtype or x.dtype == node.dtype) and x.shape is not None and len(x.shape) > 0 and fits()
                and (not views or all(other is x or base[other] is not x for other in node.inputs)))


def rule_without_the_dtype(node, x, step, lifetime, base):
    return rule(node, x, step, lifetime, base, dtype=False)


def rule_with_equal_static_shapes(node, x, step, lifetime, base):
    return rule(node, x, step, lifetime, base, shape="static")


def rule_without_later_readers(node, x, step, lifetime, base):
    return rule(node, x, step, lifetime, base, later=False)


def rule_for_every_op(node, x, step, lifetime, base):
    return rule(node, x, step, lifetime, base, in_place=False)


def rule_without_views_read_by_the_op(node, x, step, lifetime, base):
    return rule(node, x, step, lifetime, base, views=False)


def rule_that_says_none_for_no(node, x, step, lifetime, base):
    if rule(node, x, step, lifetime, base):
        return True


# ---------------------------------------------------------------------------------------------- 6.4


def longest_chain(y, previous_of):
    chain, node = [], y
    while node is not None and node.inputs:
        chain.append(node)
        node = previous_of(node)
    return chain[::-1]


def every_kth(chain, k=None, include_y=False):
    k = k or max(1, math.ceil(math.sqrt(len(chain))))
    return chain[k - 1::k] if include_y else chain[k - 1:-1:k]


def chain_by_length(y):
    length, previous = {}, {}
    for node in mg.topological_sort([y]):
        if node.inputs:
            before = max((x for x in node.inputs if x.inputs), key=length.get, default=None)
            length[node], previous[node] = 1 + length.get(before, 0), before
    return longest_chain(y, previous.get)


def checkpoints_along_the_first_inputs(y):
    return every_kth(longest_chain(y, lambda node: node.inputs[0]))


def checkpoints_including_y(y):
    return every_kth(chain_by_length(y), include_y=True)


def checkpoints_every_k_nodes_of_the_sort(y):
    nodes = mg.topological_sort([y])
    return every_kth(nodes)


def one_checkpoint_in_the_middle(y):
    chain = chain_by_length(y)
    return every_kth(chain, k=max(1, len(chain) // 2))


def a_checkpoint_after_every_op(y):
    return every_kth(chain_by_length(y), k=1)


def checkpoints_found_recursively(y):
    length = {}

    def chain_length(node):
        if node not in length:
            length[node] = 1 + max((chain_length(x) for x in node.inputs if x.inputs), default=0)
        return length[node]

    chain_length(y)
    return every_kth(longest_chain(y, lambda node: max((x for x in node.inputs if x.inputs), key=chain_length,
                                                       default=None)))


def checkpoint_positions(y):
    return list(range(len(sqrt_checkpoints(y))))


# ---------------------------------------------------------------------------------------------- 6.5


def twins(segment, trigger, *, read_twins=True, wait=True, scope=True, signal_first=False):
    built = {}

    def build():
        for node in segment:
            inputs = [built.get(x, x) if read_twins else x for x in node.inputs]
            if wait and not any(x in built for x in node.inputs):
                inputs[0] = after(trigger, inputs[0]) if signal_first else after(inputs[0], trigger)
            built[node] = mg.make_node(node.op, inputs, node.name + "'")

    if scope:
        with mg.role_scope("recompute"):
            build()
    else:
        build()
    return built


def recompute_with_an_after_on_every_input(segment, trigger):
    built = {}
    with mg.role_scope("recompute"):
        for node in segment:
            inputs = [after(built.get(x, x), trigger) for x in node.inputs]
            built[node] = mg.make_node(node.op, inputs, node.name + "'")
    return built


def recompute_reading_the_originals(segment, trigger):
    return twins(segment, trigger, read_twins=False)


def recompute_without_waiting(segment, trigger):
    return twins(segment, trigger, wait=False)


def recompute_outside_the_role_scope(segment, trigger):
    return twins(segment, trigger, scope=False)


def recompute_with_after_arguments_swapped(segment, trigger):
    return twins(segment, trigger, signal_first=True)


def recompute_nothing(segment, trigger):
    return {node: node for node in segment}


# ---------------------------------------------------------------------------------------------- 6.6


def plan_keeping_everything(order, fetches):
    base = bases(order)
    lifetime = {node: (step, len(order)) for step, node in enumerate(order) if base[node] is node}
    return mg.memory.MemoryPlan(order, fetches, lifetime, {value: n for n, value in enumerate(lifetime)})


def plan_without_in_place(order, fetches):
    lifetime = lifetimes(order, fetches, bases(order))
    return mg.memory.MemoryPlan(order, fetches, lifetime, assign_buffers(order, lifetime))


def plan_with_a_careless_rule(order, fetches):
    base = bases(order)
    lifetime = lifetimes(order, fetches, base)

    def in_place(node, step):
        return next((x for x in node.inputs if rule_without_the_dtype(node, x, step, lifetime, base)), None)

    return mg.memory.MemoryPlan(order, fetches, lifetime, assign_buffers(order, lifetime, in_place))


def plan_returning_the_buffers(order, fetches):
    lifetime = lifetimes(order, fetches, bases(order))
    return assign_buffers(order, lifetime)


def plan_through_the_package(order, fetches):
    return mg.memory.plan_memory(order, fetches)


# ---------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("exercise, answers", [
    ("6.1", (bases, liveness_scanning_each_value)),
    ("6.2", (assign_the_oldest_released_buffer,)),
    ("6.4", (lambda y: every_kth(chain_by_length(y)),)),
    ("6.5", (recompute_with_an_after_on_every_input,)),
])
def test_other_right_answers_pass(run_check, exercise, answers):
    result, report = run_check(exercise, *answers)
    assert result, report


@pytest.mark.parametrize("exercise, answers, message", [
    ("6.1", (bases_where_a_view_is_its_own, liveness),
     "the base of 'r' is wrong: 'r' (reshape) is a view: it shares the array of its first input 't', so its base is "
     "that input's base, 't'"),
    ("6.1", (bases_where_a_view_takes_its_first_input, liveness),
     "is a view: it shares the array of its first input 'W', so its base is that input's base, None"),
    ("6.1", (bases, liveness_without_fetches),
     "the lifetime of 'y' should end at 4: it is fetched, so it lives to the end of the run: len(order) = 4"),
    ("6.1", (bases, liveness_at_the_first_reader),
     "the lifetime of 't' should end at 3: its last reader is 'y', at step 3"),
    ("6.1", (bases, liveness_with_views_as_values), "the lifetimes list the view 'r': a view has no array"),
    ("6.1", (bases, liveness_of_every_node),
     "the lifetimes list 'p', which is not a value the planner owns: 'p' is a placeholder"),
    ("6.1", (bases, liveness_in_topological_sort_order), "is born at step"),
    ("6.1", (bases, liveness_where_only_fetched_values_live_on), "it is fetched through the view 'q'"),
    ("6.2", (assign_releasing_before_the_step,), "it reads that value at this very step: a buffer is free only after "
     "the step at which its value dies; taking an input's buffer at the step where the input dies is computing in "
     "place, done only for the input that in_place offers (this time the check called your function with "
     "in_place=None)"),
    ("6.2", (assign_by_dtype_only,), "a dead buffer can be reused only by a value of the same shape and dtype"),
    ("6.2", (assign_a_new_buffer_to_each_value,), "your assignment uses 26 buffers where the greedy rule needs 21: "
     "'h1' (step 5) got a new buffer while buffer 0, of its shape and dtype, was free (its last value, 'h1@W', died at "
     "step 4)"),
    ("6.2", (assign_ignoring_in_place,), "take the input's buffer when in_place offers it"),
    ("6.2", (assign_ignoring_writes_into,), "its op cannot write into a given array (op.writes_into is False)"),
    ("6.2", (assign_ignoring_unknown_dimensions,), "is not fixed (an unknown dimension, or a scalar)"),
    ("6.2", (assign_releasing_a_buffer_taken_over_in_place,), "'h1+b' took buffer 0 over 'h1@W' in place at step 4: "
     "when 'h1@W' died there, its buffer did not become free"),
    ("6.3", (rule_without_the_dtype,), "said yes, but 'y' is float64 and 'x' float32"),
    ("6.3", (rule_with_equal_static_shapes,), "only if the unknown dimensions of the inputs are"),
    ("6.3", (rule_without_later_readers,), "said yes, but 'x' is read again later: 'z' reads it at step 3"),
    ("6.3", (rule_for_every_op,), "matmul cannot write its result over an input"),
    ("6.3", (rule_without_views_read_by_the_op,), "also reads 'x' through the view 'xT'"),
    ("6.3", (rule_that_says_none_for_no,), "can_overwrite should return True or False, not None"),
    ("6.4", (checkpoints_along_the_first_inputs,),
     "your 1 checkpoint cuts the chain of 32 ops into segments of [31, 1] ops"),
    ("6.4", (checkpoints_including_y,), "y itself is not a checkpoint"),
    ("6.4", (checkpoints_every_k_nodes_of_the_sort,), "cannot be a checkpoint: it is a Variable"),
    ("6.4", (one_checkpoint_in_the_middle,), "your 1 checkpoint cuts the chain of 52 ops into segments of [26, 26] "
     "ops: a segment is recomputed at once and each checkpoint is kept throughout, so aim for about √52 ≈ 7.2 "
     "checkpoints, one every ⌈√n⌉ = 8 ops"),
    ("6.4", (a_checkpoint_after_every_op,), "your 51 checkpoints cut the chain of 52 ops into 52 segments of 1 op"),
    ("6.4", (checkpoints_found_recursively,), "raised RecursionError"),
    ("6.4", (checkpoint_positions,), "sqrt_checkpoints should return a list of nodes; it holds an int"),
    ("6.5", (recompute_reading_the_originals,), "reads the original 'h3@W'"),
    ("6.5", (recompute_without_waiting,), "does not wait for the trigger"),
    ("6.5", (recompute_outside_the_role_scope,), "has the role None"),
    ("6.5", (recompute_with_after_arguments_swapped,), "is after(trigger, h2): its value is the trigger's"),
    ("6.5", (recompute_nothing,), "the twin of 'h3@W' is 'h3@W' itself"),
    ("6.6", (plan_keeping_everything,), "your plan holds every value until the end of the step: its peak is the 3835 "
     "KiB of keeping everything"),
    ("6.6", (plan_without_in_place,), "your plan computes nothing in place"),
    ("6.6", (plan_with_a_careless_rule,), "your code raised ValueError: the plan puts"),
    ("6.6", (plan_returning_the_buffers,), "plan should return mg.memory.MemoryPlan(order, fetches, lifetime, buffer), "
     "not a dict"),
])
def test_a_typical_mistake_is_named(run_check, no_mnist_training, exercise, answers, message):
    result, report = run_check(exercise, *answers)
    assert not result and result.status == "failed", report
    assert message in report, report
    assert "hint:" in report


@pytest.mark.parametrize("exercise, answers, name", [
    ("6.1", (mg.memory.bases, liveness), "you passed mg.memory.bases itself"),
    ("6.1", (bases, lambda order, fetches: mg.memory.liveness(order, fetches)), "your code called mg.memory.liveness"),
    ("6.1", (bases, lambda order, fetches: mg.Executor(fetches, sort=lambda f: order).plan.lifetime),
     "your code called mg.Executor, minigraph's own version"),
    ("6.2", (lambda order, lifetime, in_place=None: mg.memory.plan_memory(order, []).buffer,),
     "your code called mg.memory.plan_memory"),
    ("6.3", (mg.memory.can_overwrite,), "you passed mg.memory.can_overwrite itself"),
    ("6.4", (mg.memory.sqrt_checkpoints,), "you passed mg.memory.sqrt_checkpoints itself"),
    ("6.5", (lambda segment, trigger: mg.gradients(segment[-1], segment[0], checkpoints=[segment[0]]),),
     "your code called mg.gradients"),
    ("6.6", (mg.memory.plan_memory,), "you passed mg.memory.plan_memory itself"),
    ("6.6", (plan_through_the_package,), "your code called mg.memory.plan_memory"),
])
def test_the_packages_own_implementation_does_not_pass(run_check, no_mnist_training, exercise, answers, name):
    result, report = run_check(exercise, *answers)
    assert not result and name in report and "minigraph's own version" in report, report


def test_the_checkers_in_place_reasons_agree_with_the_package_on_training_graphs():
    """The reasons 6.2 and 6.3 give are worked out in the checker; they must say no exactly where the package's
    rule does, on every (node, input) pair of the graphs the checks use."""
    pairs = 0
    for description, fetches, feed in ch06._buffer_graphs():
        order = mg.Executor(fetches).order
        lifetime, base = mg.memory.liveness(order, fetches), mg.memory.bases(order)
        for step, node in enumerate(order):
            for x in node.inputs if node in lifetime else ():
                refusal = ch06._in_place_refusal(node, x, step, order, lifetime, base)
                assert (refusal is None) == mg.memory.can_overwrite(node, x, step, lifetime, base), (node, x, refusal)
                pairs += 1
    for description, fetches, node, x in ch06._in_place_cases():
        order = mg.topological_sort(fetches)
        lifetime, base = mg.memory.liveness(order, fetches), mg.memory.bases(order)
        step = order.index(node)
        refusal = ch06._in_place_refusal(node, x, step, order, lifetime, base)
        assert (refusal is None) == mg.memory.can_overwrite(node, x, step, lifetime, base), description
    assert pairs > 100


def test_the_checkers_greedy_count_is_the_number_of_buffers_of_the_chapters_planner():
    for description, fetches, feed in ch06._buffer_graphs():
        executor = mg.Executor(fetches)
        plan, order = executor.plan, executor.order
        offer = ch06._in_place_offer(order, plan.lifetime, plan.base)
        assert ch06._greedy_count(order, plan.lifetime, offer) == len(set(plan.buffer.values())), description


def test_the_checkers_lifetimes_are_the_packages():
    for description, fetches, sort in ch06._liveness_graphs():
        order = sort(fetches)
        expected = {value: pair for value, (pair, why) in ch06._expected_lifetimes(order, fetches).items()}
        assert expected == mg.memory.liveness(order, fetches), description
        assert {node: base for node, (base, why) in ch06._expected_bases(order).items()} == mg.memory.bases(order)
