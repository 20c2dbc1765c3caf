r"""Checks of chapter 01: softmax regression in numpy.

The learner writes, in ``exercises/01_numpy_logistic_regression.ipynb``:

- 1.1 ``softmax(z)``: $\mathrm{softmax}(z)_k = e^{z_k} / \sum_j e^{z_j}$ along the last axis, stable for
  logits of $\pm 10^4$;
- 1.2 ``cross_entropy(logits, labels)``: $L = -\frac1N \sum_i \log \mathrm{softmax}(h_i)_{y_i}$, via
  log-sum-exp;
- 1.3 ``softmax_regression_gradients(W, b, x, labels)``: $\partial L/\partial W = X^\top (P - Y)/N$ and
  $\partial L/\partial b = \sum_i (P - Y)_{i,:}/N$;
- 1.4 ``sgd_epoch(params, grad_fn, x, labels, lr, batch_size, rng)``: one pass of minibatch SGD in the order
  ``rng.permutation(len(x))``, updating the arrays of ``params`` in place;
- 1.5 ``train_softmax_regression(x_train, y_train, x_test, y_test)`` -> ``(W, b, history)``: MNIST to at
  least 92% test accuracy, checked on the full data; the history comes back as ``check(...).value``.
"""

import numpy as np

from ..datasets import batches, load_mnist
from .framework import CheckFailure, Passed, Text, call_unchanged, exercise, expect_close, expect_equal, expect_shape
from .training import HISTORY_KEYS

TARGET_ACCURACY = 0.92


def reference_log_softmax(z):
    """log softmax(z) along the last axis, shifted by the maximum."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reference_cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[i, labels[i]]."""
    return -reference_log_softmax(logits)[np.arange(len(labels)), labels].mean()


def reference_gradients(W, b, x, labels):
    """dL/dW = x^T (P - Y) / N and dL/db = sum_i (P - Y)_i / N for the mean cross-entropy."""
    logits = x @ W + b
    dh = (np.exp(reference_log_softmax(logits)) - np.eye(W.shape[1])[labels]) / len(labels)
    return x.T @ dh, dh.sum(axis=0)


def numerical_gradient(loss, theta, eps=1e-6):
    """Central differences of loss() with respect to theta (float64), which is perturbed in place."""
    grad = np.zeros_like(theta)
    for j in np.ndindex(theta.shape):
        saved = theta[j]
        theta[j] = saved + eps
        loss_plus = loss()
        theta[j] = saved - eps
        loss_minus = loss()
        theta[j] = saved
        grad[j] = (loss_plus - loss_minus) / (2 * eps)
    return grad


def _naive_softmax(z):
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def _softmax_shifted_by_the_global_maximum(z):
    e = np.exp(z - z.max())
    return e / e.sum(axis=-1, keepdims=True)


def _not_finite(z, got):
    """Why ``got``, the learner's softmax(z), holds inf or nan: no shift at all, or one shift for the array."""
    def gives(candidate):
        return np.array_equal(got, candidate(z), equal_nan=True)

    if gives(_naive_softmax):
        return ("softmax(z) holds nan: np.exp(10000.0) overflows to inf, and inf / inf is nan. Nothing was "
                "subtracted from z: softmax(z) = softmax(z - c) for any c constant along the last axis, so "
                "subtract each row's maximum before exponentiating")
    if gives(_softmax_shifted_by_the_global_maximum):
        return ("softmax(z) holds nan in a row whose entries all lie far below the maximum of the whole array: "
                "after subtracting that one maximum they all underflow to e^-20000 = 0, and 0 / 0 is nan. "
                "Subtract each row's own maximum (along axis -1, keeping the axis so that it broadcasts)")
    return "softmax(z) holds inf or nan: an exp overflowed, or a whole row underflowed to 0 and 0 / 0 gave nan"


@exercise(
    "1.1",
    "stable softmax",
    expects="softmax(z)",
    nudge="Subtract something from z before exponentiating that leaves the softmax unchanged but keeps exp "
    "from overflowing.",
    hint="softmax(z) = softmax(z - c) for any c that is constant along the last axis. Take c = the maximum "
    "of each row (keep that axis, so that it broadcasts against z): the largest exponent becomes e^0 = 1 and "
    "none can overflow. Then divide the exponentials by their sum along the same axis.",
)
def _(softmax):
    rng = np.random.default_rng(0)
    cases = [
        np.array([[1.0, 2.0, 3.0]]),
        3 * rng.normal(size=(4, 10)),
        np.array([0.5, -1.0, 2.0, 0.0]),  # a single vector: the last axis is axis 0
        np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4], [-1e4, -1e4, -1e4 + 1]]),
        rng.normal(size=(2, 3, 5)),
    ]
    for z in cases:
        got = call_unchanged(softmax, z.copy())
        expect_shape(got, z.shape, input=z, what="softmax(z)")
        if not np.all(np.isfinite(got)):
            raise CheckFailure(_not_finite(z, got), input=z, got=got)
        expect_close(got, np.exp(reference_log_softmax(z)), input=z, what="softmax(z)")
    z32 = rng.normal(size=(3, 10)).astype(np.float32)
    expect_shape(softmax(z32.copy()), z32.shape, dtype=np.float32, input=z32, what="softmax of a float32 array")
    return f"{len(cases) + 1} cases, including logits of ±1e4, a 1-D vector and float32"


@exercise(
    "1.2",
    "cross-entropy from logits",
    expects="cross_entropy(logits, labels)",
    nudge="Compute log-probabilities straight from the logits (log-sum-exp), never the log of a softmax.",
    hint="log softmax(h)_k = (h_k - m) - log(sum_j exp(h_j - m)) with m the row maximum: no exp can overflow "
    "and no log sees a 0. Then pick each row's entry at its label (index the rows with np.arange(N) and the "
    "columns with the labels), negate, and average over the batch.",
)
def _(cross_entropy):
    rng = np.random.default_rng(1)
    cases = [
        (np.zeros((3, 10)), np.array([0, 4, 9])),
        (np.array([[2.0, 1.0, 0.1]]), np.array([0])),
        (3 * rng.normal(size=(8, 10)), rng.integers(0, 10, size=8)),
        (np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4]]), np.array([2, 0])),  # loss 1e4: finite, not inf
        (rng.normal(size=(5, 4)).astype(np.float32), np.array([3, 0, 1, 1, 2])),
    ]
    for logits, labels in cases:
        given = {"logits": logits, "labels": labels}
        got = call_unchanged(cross_entropy, logits.copy(), labels.copy())
        expected = reference_cross_entropy(logits.astype(np.float64), labels)
        if not isinstance(got, (int, float, np.number, np.ndarray)):
            raise CheckFailure("the loss should be a number", input=given, expected=expected, got=got)
        if np.ndim(got) != 0:
            raise CheckFailure(
                "the loss should be one number, the mean over the batch, not an array of shape "
                f"{np.shape(got)}",
                input=given,
                expected=expected,
                got=got,
            )
        if expected > 0 and np.isclose(got, -expected, rtol=1e-4):
            raise CheckFailure("the loss has the wrong sign: the cross-entropy is minus the mean log-probability of "
                               "the right class, a positive number", input=given, expected=expected, got=got)
        if len(labels) > 1 and expected != 0 and np.isclose(got, expected * len(labels), rtol=1e-4):
            raise CheckFailure("this is the sum over the batch: the loss is the mean", input=given,
                               expected=expected, got=got)
        expect_close(got, expected, input=given, rtol=1e-5, what="the loss")
    return f"{len(cases)} cases, including logits of ±1e4 (a loss of 1e4, not inf)"


@exercise(
    "1.3",
    "softmax-regression gradients",
    expects="softmax_regression_gradients(W, b, x, labels)",
    nudge="The gradient of the mean cross-entropy with respect to the logits is (P - Y) / N; the chain rule "
    "through x @ W + b does the rest.",
    hint="P = softmax(x @ W + b) row by row, and Y the one-hot labels (a row of np.eye(K) per label). "
    "With dH = (P - Y) / N, one row per example: dW is x transposed times dH (the shape of W), and db sums "
    "dH over the examples (the shape of b).",
)
def _(softmax_regression_gradients):
    rng = np.random.default_rng(2)
    cases = [
        (rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=(4, 5)), np.array([0, 2, 1, 2])),
        (rng.normal(size=(6, 4)), np.zeros(4), rng.normal(size=(1, 6)), np.array([3])),
        (np.zeros((784, 10)), np.zeros(10), rng.random((16, 784)), rng.integers(0, 10, size=16)),
        (1e3 * rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=(4, 5)), np.array([1, 1, 0, 2])),
    ]
    for case, (W, b, x, labels) in enumerate(cases):
        given = {"W": W, "b": b, "x": x, "labels": labels}
        got = call_unchanged(softmax_regression_gradients, W.copy(), b.copy(), x.copy(), labels.copy())
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise CheckFailure("the function should return a pair (dW, db)", input=given, got=got)
        dW, db = got
        expect_shape(dW, W.shape, input=given, what="dW")
        expect_shape(db, b.shape, input=given, what="db")
        expected_dW, expected_db = reference_gradients(W, b, x, labels)
        if case == 0:  # a small case: against the definition of the derivative itself

            def loss():
                return reference_cross_entropy(x @ W + b, labels)

            expected_dW, expected_db = numerical_gradient(loss, W), numerical_gradient(loss, b)
        for name, value, expected in (("dW", dW, expected_dW), ("db", db, expected_db)):
            if len(labels) > 1 and np.allclose(value, expected * len(labels), rtol=1e-4, atol=1e-7):
                raise CheckFailure(f"{name} is N times too large: the loss is a mean, so divide by N",
                                   input=given, expected=expected, got=value)
            expect_close(value, expected, input=given, rtol=1e-4, atol=1e-7, what=name)
    return f"{len(cases)} cases, one against central differences, a batch of 1, logits in the thousands"


@exercise(
    "1.4",
    "an SGD epoch",
    expects="sgd_epoch(params, grad_fn, x, labels, lr, batch_size, rng)",
    nudge="Shuffle once with rng, walk through the shuffled order in slices of batch_size, and change the "
    "parameter arrays in place.",
    hint="Draw the order once, rng.permutation of the number of examples. For start = 0, batch_size, "
    "2 batch_size, ... the minibatch is the slice of that order from start, batch_size long (the last one may "
    "be shorter). Call grad_fn on the rows "
    "of x and labels in that minibatch, then update each parameter in place (p -= lr * g), so that the arrays "
    "the caller holds change.",
    unavailable=[batches],
)
def _(sgd_epoch):
    cases = [(10, 4, 0.5), (6, 10, 0.1), (5, 1, 1.0)]
    for size, batch_size, lr in cases:
        _expect_sgd_epoch(sgd_epoch, size, batch_size, lr)
    return "3 data sets: a last minibatch smaller than the others, one minibatch for all, minibatches of 1"


def _expect_sgd_epoch(sgd_epoch, size, batch_size, lr):
    """One epoch of the learner's against the reference: the same minibatches, the same parameters after."""
    seed = size
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.arange(size), rng.normal(size=(size, 3))])  # column 0: the example's index
    labels = rng.integers(0, 3, size=size)
    W_start, b_start = rng.normal(size=(4, 3)), rng.normal(size=3)
    given = {"x[:, 0] (the example's index)": x[:, 0].astype(int), "labels": labels, "lr": lr,
             "batch_size": batch_size, "rng": Text(f"np.random.default_rng({seed})")}

    order = np.random.default_rng(seed).permutation(size)
    expected_batches = [order[start : start + batch_size] for start in range(0, size, batch_size)]
    W_expected, b_expected = W_start.copy(), b_start.copy()
    for batch in expected_batches:
        dW, db = reference_gradients(W_expected, b_expected, x[batch], labels[batch])
        W_expected -= lr * dW
        b_expected -= lr * db

    W, b = W_start.copy(), b_start.copy()
    seen = []

    def grad_fn(x_batch, labels_batch):
        indices = np.asarray(x_batch)[:, 0].astype(int)
        if not np.array_equal(labels[indices], labels_batch):
            raise CheckFailure("grad_fn received labels that do not belong to its images: index x and "
                               "labels with the same minibatch", input=given, expected=labels[indices],
                               got=labels_batch)
        seen.append(indices)
        return reference_gradients(W, b, x_batch, labels_batch)

    sgd_epoch([W, b], grad_fn, x, labels, lr, batch_size, np.random.default_rng(seed))
    expect_equal(len(seen), len(expected_batches), input=given,
                 what=f"the number of calls of grad_fn (one per minibatch of at most {batch_size})")
    for number, (got, expected) in enumerate(zip(seen, expected_batches), start=1):
        expect_equal(got, expected, input=given,
                     what=f"minibatch {number} (the indices of its examples, in the order rng.permutation gives)")
    if np.array_equal(W, W_start) and np.array_equal(b, b_start):
        raise CheckFailure("the arrays in params did not change: update them in place (p -= lr * g); "
                           "p = p - lr * g makes a new array that the caller never sees", input=given)
    expect_close(W, W_expected, input=given, rtol=1e-6, what="W after the epoch")
    expect_close(b, b_expected, input=given, rtol=1e-6, what="b after the epoch")


@exercise(
    "1.5",
    "softmax regression on MNIST",
    expects="train_softmax_regression(x_train, y_train, x_test, y_test, epochs=10, lr=0.5, batch_size=100, seed=0)",
    nudge="Start from float32 zeros, run your sgd_epoch once per epoch, and after each epoch record the loss "
    "and accuracy of the whole training and test sets.",
    hint="W = zeros of shape (x_train.shape[1], 10) and b = zeros of shape (10,), both float32, and one "
    "random generator made from seed, before the epochs. Each epoch: sgd_epoch([W, b], grad_fn, ...) with a grad_fn that "
    "returns your softmax_regression_gradients(W, b, x_batch, labels_batch); then append the epoch number "
    "(1, 2, ...) and the loss and accuracy of the current W and b on both data sets to the history. "
    "10 epochs at lr 0.5 in minibatches of 100 pass 92%.",
    time_limit=90,
)
def _(train_softmax_regression):
    blobs = _blobs()
    W, b, _ = _expect_training(train_softmax_regression, blobs, dict(epochs=2, lr=0.5, batch_size=50, seed=0))
    blob_accuracy = _accuracy(W, b, *blobs[2:])
    if blob_accuracy < 0.9:
        raise CheckFailure(
            f"on 10 well-separated clusters of points, 2 epochs reach a test accuracy of only "
            f"{blob_accuracy:.3f} (the reference: above 0.95): is the model trained?",
            input=Text("train_softmax_regression(x_train, y_train, x_test, y_test, epochs=2, lr=0.5, "
                       "batch_size=50, seed=0) on 500 + 200 points in 20 dimensions"),
        )
    mnist = (*load_mnist("train"), *load_mnist("test"))
    W, b, history = _expect_training(train_softmax_regression, mnist, {})
    accuracy = _accuracy(W, b, *mnist[2:])
    epochs = len(history["epoch"])
    if accuracy < TARGET_ACCURACY:
        raise CheckFailure(
            f"the test accuracy of the W and b you returned is {accuracy:.4f}, below {TARGET_ACCURACY} after "
            f"{epochs} epoch{'s' * (epochs != 1)}: train longer or tune lr and batch_size (the defaults)",
            input=Text("train_softmax_regression(x_train, y_train, x_test, y_test) on MNIST"),
        )
    summary = f"{epochs} epochs on 60,000 images, test accuracy at least {TARGET_ACCURACY:.0%}"
    return Passed(summary, value=history)


def _blobs():
    """10 classes of points around well-separated centres in 20 dimensions: 500 to train, 200 to test."""
    rng = np.random.default_rng(5)
    centres = 4 * rng.normal(size=(10, 20))
    labels = rng.integers(0, 10, size=700)
    points = (centres[labels] + rng.normal(size=(700, 20))).astype(np.float32)
    return points[:500], labels[:500], points[500:], labels[500:]


def _accuracy(W, b, x, labels):
    return float(np.mean((x @ W + b).argmax(axis=1) == labels))


def _expect_training(train, data, options):
    """Run the learner's training; check the (W, b, history) it returns and that the history's last
    entries are the loss and accuracy of that W and b."""
    described = "train_softmax_regression(x_train, y_train, x_test, y_test"
    described = Text(described + "".join(f", {name}={value}" for name, value in options.items()) + ")")
    x_train, y_train, x_test, y_test = data
    got = train(*data, **options)
    if not (isinstance(got, (tuple, list)) and len(got) == 3):
        raise CheckFailure("the function should return a triple (W, b, history)", input=described, got=got)
    W, b, history = got
    expect_shape(W, (x_train.shape[1], 10), input=described, what="W")
    expect_shape(b, (10,), input=described, what="b")
    for name, value in (("W", W), ("b", b)):
        if value.dtype != np.float32:
            raise CheckFailure(f"{name} is {value.dtype}; the exercise asks for float32 parameters, like the "
                               "images: start from np.zeros(..., np.float32). In float64 every product with the "
                               "images is computed in float64, with twice the memory and time",
                               input=described, got=Text(f"{name}.dtype = {value.dtype}"))
    if not isinstance(history, dict) or any(key not in history for key in HISTORY_KEYS):
        raise CheckFailure(f"history should be a dict with the keys {', '.join(HISTORY_KEYS)}",
                           input=described, got=history)
    epochs = options.get("epochs", len(history["epoch"]))
    if epochs < 1:
        raise CheckFailure("the history is empty: train for at least one epoch", input=described, got=history)
    expect_equal(list(history["epoch"]), list(range(1, epochs + 1)), input=described, what='history["epoch"]')
    for key in HISTORY_KEYS[1:]:
        expect_equal(len(history[key]), epochs, input=described, what=f'the length of history["{key}"]')
    for split, x, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        logits = (x @ W + b).astype(np.float64)
        expect_close(history[f"{split}_loss"][-1], reference_cross_entropy(logits, labels), input=described,
                     rtol=1e-4, what=f'history["{split}_loss"][-1], the loss of the W and b returned')
        expect_close(history[f"{split}_acc"][-1], _accuracy(W, b, x, labels), input=described, atol=1e-3,
                     what=f'history["{split}_acc"][-1], the accuracy of the W and b returned')
    return W, b, history
