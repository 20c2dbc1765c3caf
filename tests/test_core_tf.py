"""The classic TensorFlow-1 MNIST softmax-regression programs run unchanged on ``minigraph.tf`` — the
"MNIST for ML beginners" tutorial in its original and its r1.x form, the "Deep MNIST for experts" one with
its InteractiveSession, ``train_step.run`` and ``accuracy.eval``, and the ``mnist_softmax.py`` script with
its ``main(_)`` and ``tf.app.run`` — and reach about 92% test accuracy. Only the import and the data
loading differ from the originals."""

import runpy
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

import minigraph.tf as tf


ORIGINAL_TUTORIAL = """
x = tf.placeholder(tf.float32, [None, 784])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
y = tf.nn.softmax(tf.matmul(x, W) + b)
y_ = tf.placeholder(tf.float32, [None, 10])
cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
init = tf.initialize_all_variables()
sess = tf.Session()
sess.run(init)
for i in range(1000):
  batch_xs, batch_ys = mnist.train.next_batch(100)
  sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})
correct_prediction = tf.equal(tf.argmax(y,1), tf.argmax(y_,1))
accuracy = tf.reduce_mean(tf.cast(correct_prediction, "float"))
result = sess.run(accuracy, feed_dict={x: mnist.test.images, y_: mnist.test.labels})
"""

R1_TUTORIAL = """
x = tf.placeholder(tf.float32, [None, 784])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
y = tf.matmul(x, W) + b
y_ = tf.placeholder(tf.float32, [None, 10])
cross_entropy = tf.reduce_mean(
    tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
with tf.Session() as sess:
  sess.run(tf.global_variables_initializer())
  for _ in range(1000):
    batch_xs, batch_ys = mnist.train.next_batch(100)
    sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})
  correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
  accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
  result = sess.run(accuracy, feed_dict={x: mnist.test.images, y_: mnist.test.labels})
"""


# "Deep MNIST for Experts" (TensorFlow r1.x), its softmax regression part, as written: an InteractiveSession
# made first, the graph built around it, `.run()` and `.eval()` in the default session.
EXPERTS_TUTORIAL = """
sess = tf.InteractiveSession()
x = tf.placeholder(tf.float32, shape=[None, 784])
y_ = tf.placeholder(tf.float32, shape=[None, 10])
W = tf.Variable(tf.zeros([784,10]))
b = tf.Variable(tf.zeros([10]))
sess.run(tf.global_variables_initializer())
y = tf.matmul(x,W) + b
cross_entropy = tf.reduce_mean(
    tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)
for _ in range(1000):
  batch = mnist.train.next_batch(100)
  train_step.run(feed_dict={x: batch[0], y_: batch[1]})
correct_prediction = tf.equal(tf.argmax(y,1), tf.argmax(y_,1))
accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
print(accuracy.eval(feed_dict={x: mnist.test.images, y_: mnist.test.labels}))
"""

# tensorflow/examples/tutorials/mnist/mnist_softmax.py (r1.4 to r1.x), as a script: `main(_)` started by
# `tf.app.run`, integer labels, `tf.losses`, and `tf.global_variables_initializer().run()`.
SOFTMAX_SCRIPT = """
import argparse
import sys

import minigraph.tf as tf

FLAGS = None


def main(_):
  # Import data
  mnist = input_data.read_data_sets(FLAGS.data_dir)

  # Create the model
  x = tf.placeholder(tf.float32, [None, 784])
  W = tf.Variable(tf.zeros([784, 10]))
  b = tf.Variable(tf.zeros([10]))
  y = tf.matmul(x, W) + b

  # Define loss and optimizer
  y_ = tf.placeholder(tf.int64, [None])
  cross_entropy = tf.losses.sparse_softmax_cross_entropy(labels=y_, logits=y)
  train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)

  sess = tf.InteractiveSession()
  tf.global_variables_initializer().run()
  # Train
  for _ in range(1000):
    batch_xs, batch_ys = mnist.train.next_batch(100)
    sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})

  # Test trained model
  correct_prediction = tf.equal(tf.argmax(y, 1), y_)
  accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
  print(sess.run(
      accuracy, feed_dict={
          x: mnist.test.images,
          y_: mnist.test.labels
      }))


if __name__ == '__main__':
  parser = argparse.ArgumentParser()
  parser.add_argument(
      '--data_dir',
      type=str,
      default='/tmp/tensorflow/mnist/input_data',
      help='Directory for storing input data')
  FLAGS, unparsed = parser.parse_known_args()
  tf.app.run(main=main, argv=[sys.argv[0]] + unparsed)
"""


@pytest.fixture(scope="module")
def mnist():
    """The real MNIST from the course's data folder ($MINIGRAPH_DATA or the cache that setup fills)."""
    return tf.read_data_sets(one_hot=True)


@pytest.mark.parametrize("program", [ORIGINAL_TUTORIAL, R1_TUTORIAL], ids=["original", "r1"])
def test_the_tutorial_reaches_92_percent(program, mnist):
    namespace = {"tf": tf, "mnist": mnist}
    exec(textwrap.dedent(program), namespace)
    assert namespace["result"] >= 0.915


def printed_accuracy(output):
    """The accuracy a program printed as its last line."""
    return float(output.strip().splitlines()[-1])


def test_the_experts_tutorial_runs_with_an_interactive_session(mnist, capsys):
    namespace = {"tf": tf, "mnist": mnist}
    try:
        exec(textwrap.dedent(EXPERTS_TUTORIAL), namespace)
        assert tf.get_default_session() is namespace["sess"]
    finally:
        namespace["sess"].close()
    assert tf.get_default_session() is None
    assert printed_accuracy(capsys.readouterr().out) >= 0.915


def test_the_softmax_script_runs_through_tf_app_run(tmp_path, monkeypatch, capsys):
    """The data loading is the one change: ``input_data`` stands for TensorFlow's MNIST reader."""
    script = tmp_path / "mnist_softmax.py"
    script.write_text(SOFTMAX_SCRIPT)
    input_data = SimpleNamespace(read_data_sets=lambda data_dir, one_hot=False: tf.read_data_sets(one_hot=one_hot))
    monkeypatch.setattr(sys, "argv", [str(script), "--data_dir", "/nowhere", "--unknown_flag=1"])
    with pytest.raises(SystemExit) as exit_status:
        runpy.run_path(str(script), init_globals={"input_data": input_data}, run_name="__main__")
    assert exit_status.value.code is None  # main returned None: success
    tf.get_default_session().close()  # the script leaves its InteractiveSession open, as TensorFlow allowed
    assert printed_accuracy(capsys.readouterr().out) >= 0.915


def test_app_run_finds_main_and_passes_argv(monkeypatch):
    received = []
    main_module = SimpleNamespace(main=lambda argv: received.append(argv) or 3)
    monkeypatch.setitem(sys.modules, "__main__", main_module)
    monkeypatch.setattr(sys, "argv", ["script.py", "--flag"])
    with pytest.raises(SystemExit) as exit_status:
        tf.app.run()
    assert exit_status.value.code == 3 and received == [["script.py", "--flag"]]


def test_sessions_as_default_in_the_tf1_idioms():
    counter = tf.Variable(0.0)
    increment = tf.assign_add(counter, 1.0)
    sess = tf.Session()
    with sess.as_default():
        increment.run()
        increment.run()
    with tf.Session() as other:
        increment.run()
        assert counter.eval() == 1.0 and tf.get_default_session() is other
    assert counter.eval(session=sess) == 2.0 and tf.get_default_session() is None
    with pytest.raises(RuntimeError, match="no session to compute"):
        counter.eval()


@pytest.mark.parametrize("name, path", [
    ("nn.conv2d", lambda: tf.nn.conv2d), ("pad", lambda: tf.pad), ("train.AdagradOptimizer", lambda: tf.train.AdagradOptimizer),
    ("app.flags", lambda: tf.app.flags), ("losses.hinge_loss", lambda: tf.losses.hinge_loss),
])
def test_unsupported_names_say_the_facade_covers_a_subset(name, path):
    with pytest.raises(AttributeError, match=f"minigraph.tf has no '{name}': it covers the subset of TensorFlow 1") as error:
        path()
    assert "help(minigraph.ops)" in str(error.value) and "write it as an Op" in str(error.value)
    assert hasattr(tf.nn, "softmax") and not hasattr(tf.nn, "max_pool") and "relu" in dir(tf.nn)


def test_data_sets_are_one_hot_and_batches_reproducible(mnist):
    assert mnist.train.images.shape == (60000, 784) and mnist.test.labels.shape == (10000, 10)
    first = tf.read_data_sets(one_hot=False).train
    assert first.labels.dtype == np.int64
    a, b = tf.read_data_sets().train, tf.read_data_sets().train
    assert all(np.array_equal(a.next_batch(100)[1], b.next_batch(100)[1]) for _ in range(3))


def test_facade_names_map_onto_the_core():
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    labels = tf.placeholder(tf.int64, [None])
    w = tf.Variable(tf.random_normal([3, 3], stddev=0.1, seed=1), name="w")
    logits = tf.matmul(x, w, transpose_b=True)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    (grad,) = tf.gradients(loss, [w])
    feed = {x: np.eye(3, dtype=np.float32), labels: np.array([0, 1, 2])}
    with tf.Session() as sess:
        before = sess.run(loss, feed)
        for optimizer in (tf.train.MomentumOptimizer(0.5, 0.9, use_nesterov=True), tf.train.AdamOptimizer(0.05)):
            step = optimizer.minimize(loss)
            for _ in range(20):
                sess.run(step, feed)
        assert sess.run(loss, feed) < before and sess.run(grad, feed).shape == (3, 3)
        sess.run(tf.global_variables_initializer())
        assert np.isclose(sess.run(loss, feed), before)  # the initializer resets weights and slots
    assert tf.reduce_sum(x, axis=1, keep_dims=True).shape == (None, 1) and tf.argmax(x).shape == (3,)
    assert tf.cast(x, "float").dtype == np.float32 and tf.constant(0.1, shape=[2]).shape == (2,)
    assert np.abs(tf.Session().run(tf.truncated_normal([1000], stddev=0.5, seed=0))).max() <= 1.0
    with pytest.raises(TypeError, match="keyword arguments"):
        tf.nn.softmax_cross_entropy_with_logits(logits, labels)
