"""The checks of chapter 02: the reference solutions pass, and typical wrong answers fail with a message
that says what is wrong. The reference solutions are the exercise cells of
solutions/02_computation_graphs.ipynb, whose nbval run shows them all passing (2.5's full training included).
Exercises 2.4 and 2.5 train on MNIST, found as the notebooks find it (MINIGRAPH_DATA or the course's cache)."""

import numpy as np
import pytest

import minigraph as mg

from solution_code import solution_namespace


@pytest.fixture(scope="module")
def solved():
    return solution_namespace("02_computation_graphs.ipynb")


@pytest.fixture
def report(run_check):
    """``report(capsys, *args)``: the result and the folded report of check(*args)."""
    return lambda capsys, *args: run_check(*args)


@pytest.mark.parametrize("exercise, name", [("2.1", "topological_sort"), ("2.2", "Affine"), ("2.3", "evaluate"),
                                            ("2.4", "softmax_regression")])
def test_the_reference_solution_passes(capsys, report, solved, exercise, name):
    result, out = report(capsys, exercise, solved[name])
    assert result, out
    assert out.startswith(f"✓ Exercise {exercise}")


def recursive_sort(fetches):
    order, seen = [], set()

    def visit(node):
        if node not in seen:
            seen.add(node)
            for x in node.inputs:
                visit(x)
            order.append(node)

    for fetch in fetches:
        visit(fetch)
    return order


def sort_without_visited_set(fetches):
    order = []
    for fetch in fetches:
        stack = [(fetch, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            else:
                stack.append((node, True))
                stack.extend((x, False) for x in reversed(node.inputs))
    return order


def test_a_recursive_sort_is_told_to_keep_its_own_stack(capsys, report):
    result, out = report(capsys, "2.1", recursive_sort)
    assert not result
    assert "RecursionError" in out and "Keep your own stack" in out


def test_a_sort_that_lists_a_shared_node_twice_fails_naming_it(capsys, report):
    result, out = report(capsys, "2.1", sort_without_visited_set)
    assert not result
    assert "lists node 'x' twice" in out and "expected:" in out and "got:" in out


def test_a_reversed_order_names_the_node_before_its_input(capsys, report, solved):
    result, out = report(capsys, "2.1", lambda fetches: solved["topological_sort"](fetches)[::-1])
    assert not result
    assert "puts node 'c' (position 0) before its input" in out


def test_a_sort_that_drops_the_sources_fails(capsys, report, solved):
    result, out = report(capsys, "2.1", lambda fetches: [n for n in solved["topological_sort"](fetches) if n.inputs])
    assert not result
    assert "misses 3 node(s)" in out


def test_an_affine_op_without_shape_errors_fails(capsys, report, solved):
    class Lenient(solved["Affine"]):
        def infer_shape(self, node, input_shapes):
            if any(shape is None for shape in input_shapes):
                return None
            x, W, b = input_shapes
            return (x[0], W[-1] if W[-1] is not None else b[-1])

    result, out = report(capsys, "2.2", Lenient)
    assert not result
    assert "should raise a ShapeError (x has 784 columns but W has 785 rows)" in out


def test_an_affine_op_that_ignores_b_for_the_size_fails_with_the_shapes(capsys, report, solved):
    class IgnoresB(solved["Affine"]):
        def infer_shape(self, node, input_shapes):
            shape = super().infer_shape(node, input_shapes)
            return None if shape is None else (shape[0], input_shapes[1][1])

    result, out = report(capsys, "2.2", IgnoresB)
    assert not result
    assert "input W: (None, None)" in out and "expected: (2, 5) got: (2, None)" in out


def test_an_affine_op_raising_the_wrong_error_type_is_told_to_use_shape_error(capsys, report, solved):
    class RaisesValueError(solved["Affine"]):
        def infer_shape(self, node, input_shapes):
            try:
                return super().infer_shape(node, input_shapes)
            except mg.ShapeError as error:
                raise ValueError(str(error)) from None

    result, out = report(capsys, "2.2", RaisesValueError)
    assert not result
    assert "raised ValueError" in out and "self.shape_error(node, why)" in out


def test_an_executor_that_computes_before_checking_the_feeds_fails(capsys, report):
    def evaluate(fetches, feed_dict):
        values = {}
        for node in mg.topological_sort(fetches):
            if isinstance(node, mg.Placeholder):
                values[node] = feed_dict[node]  # a KeyError, but only once it gets there
            else:
                values[node] = node.op.compute(node, [values[x] for x in node.inputs])
        return [values[f] for f in fetches]

    result, out = report(capsys, "2.3", evaluate)
    assert not result
    assert "computed node 'early' before noticing that placeholder 'x' is not fed" in out


def test_an_executor_with_a_bug_shows_the_learners_line(capsys, report, solved):
    def evaluate(fetches, feed_dict):
        return solved["evaluate"](fetches, feed_dict)[:1]

    result, out = report(capsys, "2.3", evaluate)
    assert not result
    assert "evaluate should return a list with one value per fetch" in out


def test_a_model_that_ignores_the_learning_rate_fails_on_its_losses(capsys, report, solved):
    result, out = report(capsys, "2.4", lambda learning_rate: solved["softmax_regression"](0.5))
    assert not result
    assert "the loss before each step differs" in out and "input learning_rate: 0.1" in out


def test_a_model_with_a_summed_loss_fails_on_the_first_value(capsys, report, solved):
    def summed(learning_rate):
        x, y_, loss, train_step, accuracy = solved["softmax_regression"](learning_rate)
        return x, y_, loss * 100.0, train_step, accuracy

    result, out = report(capsys, "2.4", summed)
    assert not result
    assert "the loss before training" in out and "230.259" in out


def test_a_model_with_integer_labels_is_told_the_declaration(capsys, report, solved):
    def integer_labels(learning_rate):
        x, _, loss, train_step, accuracy = solved["softmax_regression"](learning_rate)
        return x, mg.placeholder("labels", shape=(None,), dtype="int64"), loss, train_step, accuracy

    result, out = report(capsys, "2.4", integer_labels)
    assert not result
    assert "y_ should be declared with shape (None, 10) and dtype float32" in out


def fake_history(epochs=3):
    return {"epoch": list(range(1, epochs + 1)), "train_loss": [0.3] * epochs, "train_acc": [0.92] * epochs,
            "test_loss": [0.3] * epochs, "test_acc": [0.92] * epochs}


def test_a_training_loop_that_ignores_the_sort_fails(capsys, report, solved):
    result, out = report(capsys, "2.5", lambda model, sort, data, epochs, batch_size=100, seed=0: fake_history(epochs),
                         solved["topological_sort"], solved["softmax_regression"])
    assert not result
    assert "never called your topological sort" in out


def test_a_history_without_the_test_accuracy_names_the_key(capsys, report, solved):
    def train(model, sort, data, epochs, batch_size=100, seed=0):
        history = fake_history(epochs)
        del history["test_acc"]
        return history

    result, out = report(capsys, "2.5", train, solved["topological_sort"], solved["softmax_regression"])
    assert not result
    assert "the history misses the key(s) ['test_acc']" in out


def test_the_stub_of_the_sort_is_named_when_training_needs_it(capsys, report, solved):
    def stub(fetches):
        raise NotImplementedError("Exercise 2.1")

    result, out = report(capsys, "2.5", solved["train"], stub, solved["softmax_regression"])
    assert result.status == "not implemented"
    assert "it needs exercise 2.1 first" in out


@pytest.mark.parametrize("exercise", ["2.1", "2.2", "2.3", "2.4"])
def test_a_stub_reports_not_implemented_yet(capsys, report, exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise}")

    class StubOp(mg.Op):
        def infer_shape(self, node, input_shapes):
            raise NotImplementedError("Exercise 2.2")

    result, out = report(capsys, exercise, StubOp if exercise == "2.2" else stub)
    assert result.status == "not implemented"
    assert out.startswith(f"… Exercise {exercise}") and "Traceback" not in out


def test_the_package_sort_does_not_pass_the_sort_exercise(capsys, report):
    for answer in (mg.topological_sort, lambda fetches: mg.topological_sort(fetches)):
        result, out = report(capsys, "2.1", answer)
        assert not result and "mg.topological_sort" in out and "minigraph's own version" in out


def test_a_session_is_not_an_executor_of_ones_own(capsys, report):
    result, out = report(capsys, "2.3", lambda fetches, feed_dict: mg.Session().run(fetches, feed_dict))
    assert not result and "your code called mg.Session.run, minigraph's own version" in out


def model_updating_with(update):
    """softmax_regression whose train_step applies ``update(variable, step)`` to W and b."""

    def softmax_regression(learning_rate):
        x, y_ = mg.placeholder("x", shape=(None, 784)), mg.placeholder("y_", shape=(None, 10))
        W = mg.Variable(np.zeros((784, 10), np.float32), name="W")
        b = mg.Variable(np.zeros(10, np.float32), name="b")
        y = mg.softmax(x @ W + b)
        loss = mg.reduce_mean(-mg.reduce_sum(y_ * mg.log(y), axis=1))
        grad_W, grad_b = mg.gradients(loss, [W, b])
        train_step = mg.group(update(W, learning_rate * grad_W), update(b, learning_rate * grad_b))
        accuracy = mg.reduce_mean(mg.cast(mg.equal(mg.argmax(y, axis=1), mg.argmax(y_, axis=1)), "float32"))
        return x, y_, loss, train_step, accuracy

    return softmax_regression


@pytest.mark.parametrize("update, message", [
    (mg.assign, "train_step replaces W and b by the step itself (mg.assign(W, learning_rate * grad_W)) instead of "
                "subtracting the step from them"),
    (mg.assign_add, "the loss grows: train_step moves W and b along the gradient, up the loss"),
    (lambda variable, step: mg.assign_sub(variable, -step), "the loss grows"),
])
def test_an_update_that_assigns_or_adds_the_step_is_named(capsys, report, update, message):
    result, out = report(capsys, "2.4", model_updating_with(update))
    assert not result and message in out, out


def test_an_optimizer_instead_of_ones_own_update_is_refused(capsys, report, solved):
    def with_sgd(learning_rate):
        x, y_, loss, _, accuracy = solved["softmax_regression"](learning_rate)
        return x, y_, loss, mg.optim.SGD(learning_rate).minimize(loss), accuracy

    result, out = report(capsys, "2.4", with_sgd)
    assert not result and "your code called mg.optim.Optimizer.minimize" in out


def train_with(reseed=False, last_batch=False):
    """The training loop of exercise 2.5, right, or with one of two slips."""

    def train(build_model, sort, data, epochs, batch_size=100, seed=0):
        x_train, y_train, x_test, y_test = data
        x, y_, loss, train_step, accuracy = build_model(0.5)
        sess, rng = mg.Session(sort=sort), np.random.default_rng(seed)
        history = {"epoch": [], "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
        for epoch in range(1, epochs + 1):
            for images, labels in mg.datasets.batches(x_train, y_train, batch_size,
                                                      np.random.default_rng(seed) if reseed else rng):
                sess.run(train_step, {x: images, y_: labels})
            history["epoch"].append(epoch)
            train_set = (images, labels) if last_batch else (x_train, y_train)
            for split, (split_images, split_labels) in (("train", train_set), ("test", (x_test, y_test))):
                split_loss, split_accuracy = sess.run([loss, accuracy], {x: split_images, y_: split_labels})
                history[f"{split}_loss"].append(float(split_loss))
                history[f"{split}_acc"].append(float(split_accuracy))
        return history

    return train


@pytest.mark.parametrize("slip, message", [
    ({"reseed": True}, "every epoch visits the minibatches in the same order: the generator is created again"),
    ({"last_batch": True}, "are the loss and accuracy of the last minibatch of each epoch"),
])
def test_a_training_loop_that_reseeds_or_measures_the_last_batch_is_named(capsys, report, solved, slip, message):
    result, out = report(capsys, "2.5", train_with(**slip), solved["topological_sort"], solved["softmax_regression"])
    assert not result and message in out, out
