"""The classic TensorFlow-1 MNIST softmax-regression tutorial runs unchanged on ``minigraph.tf`` — in its
original form and in its r1.x form — and reaches about 92% test accuracy."""

import textwrap

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


@pytest.fixture(scope="module")
def mnist():
    """The real MNIST from the course's data folder ($MINIGRAPH_DATA or the cache that setup fills)."""
    return tf.read_data_sets(one_hot=True)


@pytest.mark.parametrize("program", [ORIGINAL_TUTORIAL, R1_TUTORIAL], ids=["original", "r1"])
def test_the_tutorial_reaches_92_percent(program, mnist):
    namespace = {"tf": tf, "mnist": mnist}
    exec(textwrap.dedent(program), namespace)
    assert namespace["result"] >= 0.915


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
