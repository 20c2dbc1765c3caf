"""Executing graphs: fetch structures, variable state, feeds and their errors, the executor's plan and its
extension point (a learner's topological sort)."""

import numpy as np
import pytest

import minigraph as mg


@pytest.fixture
def graph():
    x = mg.placeholder("x", (None, 2))
    W = mg.Variable(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), name="W")
    y = x @ W
    return x, W, y, mg.reduce_sum(y)


def test_run_returns_the_structure_of_the_fetches(graph):
    x, W, y, total = graph
    feed = {x: np.ones((1, 2), np.float32)}
    sess = mg.Session()
    assert np.array_equal(sess.run(y, feed), [[4, 6]])
    assert isinstance(sess.run([y, total], feed), list) and isinstance(sess.run((y, total), feed), tuple)
    nested = sess.run({"out": y, "more": [total, (W,)]}, feed)
    assert set(nested) == {"out", "more"} and nested["more"][0] == 10 and np.array_equal(nested["more"][1][0], W.initial_value)


def test_variables_live_in_the_session_and_assign_changes_them(graph):
    x, W, y, total = graph
    step = mg.assign_sub(W, mg.ones_like(W))
    sess, other = mg.Session(), mg.Session()
    before = sess.run(W)
    assert np.array_equal(sess.run(step), before - 1) and np.array_equal(sess.run(W), before - 1)
    assert np.array_equal(other.run(W), before) and np.array_equal(W.initial_value, before)
    assert np.array_equal(sess.run(mg.assign(W, np.zeros((2, 2)))), np.zeros((2, 2)))
    sess.run(mg.assign_add(W, 5.0))
    assert np.array_equal(sess.run(W), np.full((2, 2), 5.0))
    assert sess.run(mg.group(step, mg.assign_add(W, 1.0))) is None and np.array_equal(sess.run(W), np.full((2, 2), 5.0))


def test_fetched_variable_values_are_copies(graph):
    x, W, y, total = graph
    sess = mg.Session()
    fetched, view = sess.run([W, mg.reshape(W, (4,))])
    sess.run(mg.assign_add(W, 1.0))
    assert np.array_equal(fetched, W.initial_value) and np.array_equal(view, W.initial_value.ravel())


def test_reads_in_one_run_see_the_value_from_the_start_of_the_run(graph):
    x, W, y, total = graph
    penalty = mg.reduce_sum(W * W)
    step = mg.assign_sub(W, 0.1 * mg.gradients(penalty, W))
    transposed = mg.matmul(x, mg.transpose(W))  # reads W through a view
    feed = {x: np.ones((1, 2), np.float32)}
    sess = mg.Session()
    initial_penalty, initial_product = sess.run(penalty), sess.run(transposed, feed)
    _, p, t = sess.run([step, penalty, transposed], feed)
    assert p == initial_penalty and np.array_equal(t, initial_product)
    assert sess.run(penalty) == pytest.approx(initial_penalty * 0.8**2)


def test_the_output_of_an_assign_is_the_new_value():
    v = mg.Variable(np.float32(1.0))
    update = mg.assign(v, v + 1.0)
    doubled = update * 2.0
    assert mg.Session().run([doubled, v]) == [4.0, 1.0]


def test_unfed_placeholder_error_names_it_and_the_fetch(graph):
    x, W, y, total = graph
    with pytest.raises(KeyError, match=r"placeholder 'x' \(None, 2\) must be fed: fetch '.*' depends on it"):
        mg.Session().run(total)


def test_feed_with_wrong_shape_is_refused(graph):
    x, W, y, total = graph
    with pytest.raises(ValueError, match=r"feed for placeholder 'x' has shape \(3, 3\), but the placeholder was declared \(None, 2\)"):
        mg.Session().run(y, {x: np.ones((3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        mg.Session().run(y, {x: np.ones(2, np.float32)})


def test_feed_dtypes_are_cast_within_a_kind_and_refused_across(graph):
    x, W, y, total = graph
    labels = mg.placeholder("labels", (None,), "int64")
    sess = mg.Session()
    assert sess.run(y, {x: np.ones((1, 2), np.float64)}).dtype == np.float32
    assert sess.run(y, {x: [[1, 1]]}).dtype == np.float32  # ints into a float placeholder: converted
    assert sess.run(labels * 2, {labels: np.array([1, 2], np.int32)}).dtype == np.int64
    with pytest.raises(TypeError, match=r"placeholder 'labels' \(None,\): float64 data cannot become int64"):
        sess.run(labels * 2, {labels: np.array([1.0, 2.0])})


def test_bad_fetches_and_feeds_are_named(graph):
    x, W, y, total = graph
    sess = mg.Session()
    with pytest.raises(TypeError, match="cannot fetch a str"):
        sess.run([y, "loss"], {x: np.ones((1, 2))})
    with pytest.raises(TypeError, match="fetch 0 is a int, not a Node"):
        mg.Executor([3])
    with pytest.raises(TypeError, match=r"cannot feed variable node 'W' \(2, 2\): only placeholders are fed \(use assign"):
        sess.run(y, {x: np.ones((1, 2)), W: np.zeros((2, 2))})
    with pytest.raises(TypeError, match="cannot feed matmul node"):
        sess.run(total, {x: np.ones((1, 2)), y: np.zeros((1, 2))})
    with pytest.raises(TypeError, match="feed_dict keys must be placeholder nodes, got the str 'x'"):
        sess.run(y, {x: np.ones((1, 2)), "x": 1})
    assert sess.run(W, {x: np.ones((1, 2))}).shape == (2, 2)  # feeding an unused placeholder is fine


def test_errors_inside_compute_name_the_node():
    logits = mg.placeholder("logits", (None, 3))
    labels = mg.placeholder("labels", (None,), "int64")
    loss = mg.softmax_cross_entropy(logits, labels, name="ce")
    with pytest.raises(ValueError, match="the labels 'labels' hold 3, but the logits 'logits' have 3 classes") as error:
        mg.Session().run(loss, {logits: np.zeros((2, 3)), labels: [0, 3]})
    assert "while computing softmax_cross_entropy node 'ce' (None,)" in "".join(error.value.__notes__)
    with pytest.raises(ValueError, match=r"'ce': the labels 'labels' hold -1, .* labels must lie in \[0, 3\)"):
        mg.Session().run(loss, {logits: np.zeros((2, 3)), labels: [0, -1]})


def test_executor_runs_with_the_same_machinery_and_caches_its_plan(graph):
    x, W, y, total = graph
    executor = mg.Executor([y, total])
    assert [n.name for n in executor.order][:2] == ["x", "W"]
    first = executor.run({x: np.ones((1, 2))})
    assert isinstance(first, list) and first[1] == 10
    sess = mg.Session()
    sess.run([y, total], {x: np.ones((1, 2))})
    sess.run([y, total], {x: np.zeros((3, 2))})
    assert len(sess._executors) == 1


def test_a_learners_sort_drives_execution_and_is_checked(graph):
    x, W, y, total = graph
    calls = []

    def my_sort(fetches):
        calls.append(list(fetches))
        return mg.topological_sort(fetches)

    sess = mg.Session(sort=my_sort)
    assert sess.run(total, {x: np.ones((1, 2))}) == 10 and calls == [[total]]
    assert mg.Executor([total], sort=my_sort).run({x: np.ones((1, 2))}) == [10]

    with pytest.raises(ValueError, match=r"lists node 'reduce_sum.*' before its input 'matmul.*'"):
        mg.Executor([total], sort=lambda fetches: mg.topological_sort(fetches)[::-1])
    with pytest.raises(ValueError, match="misses the fetch"):
        mg.Executor([total], sort=lambda fetches: mg.topological_sort(fetches)[:-1])
    with pytest.raises(ValueError, match="twice"):
        mg.Executor([total], sort=lambda fetches: mg.topological_sort(fetches) * 2)


def test_session_as_context_manager_closes(graph):
    x, W, y, total = graph
    with mg.Session() as sess:
        assert np.array_equal(sess.run(W), W.initial_value)
    with pytest.raises(RuntimeError, match="closed"):
        sess.run(W)


def test_set_value_overwrites_a_variable(graph):
    x, W, y, total = graph
    sess = mg.Session()
    sess.set_value(W, np.eye(2))
    assert np.array_equal(sess.run(W), np.eye(2))
    with pytest.raises(ValueError, match=r"cannot take a value of shape \(3,\)"):
        sess.set_value(W, np.ones(3))


def test_integer_feeds_that_do_not_fit_are_refused_instead_of_wrapping():
    small = mg.placeholder("small", (None,), "int32")
    sess = mg.Session()
    assert sess.run(small * 1, {small: np.array([2**31 - 1, -(2**31)], np.int64)}).tolist() == [2**31 - 1, -(2**31)]
    for values in ([2**31], [-(2**31) - 1], [0, 2**40]):
        with pytest.raises(ValueError, match=r"placeholder 'small' \(None,\): int64 values from .* do not fit int32"):
            sess.run(small * 1, {small: np.array(values, np.int64)})
    pixels = mg.placeholder("pixels", (None,), "uint8")
    with pytest.raises(ValueError, match=r"uint16 values from 3 to 300 do not fit uint8 \[0, 255\]"):
        sess.run(pixels * 1, {pixels: np.array([3, 300], np.uint16)})
    counter = mg.Variable(np.int32(0), name="counter")
    with pytest.raises(ValueError, match="set_value of variable 'counter'.*do not fit int32"):
        sess.set_value(counter, np.int64(2**33))


def test_eval_and_run_use_the_default_session():
    counter = mg.Variable(np.float32(0), name="counter")
    x = mg.placeholder("x", ())
    increment, doubled = mg.assign_add(counter, 1.0), counter * x
    with pytest.raises(RuntimeError, match=r"no session to compute 'mul.*' \(\) in: pass session=sess"):
        doubled.eval({x: 2.0})
    sess, other = mg.Session(), mg.Session()
    with sess.as_default():
        increment.run()
        assert mg.session.get_default_session() is sess and doubled.eval({x: 2.0}) == 2.0
        with other.as_default():
            assert counter.eval() == 0.0 and counter.eval(session=sess) == 1.0
        assert doubled.eval(feed_dict={x: 3.0}) == 3.0
    assert mg.session.get_default_session() is None and increment.eval(session=sess) == 2.0
    with mg.Session() as inner:
        assert mg.session.get_default_session() is inner and increment.eval() == 1.0
    assert mg.session.get_default_session() is None and inner._closed
