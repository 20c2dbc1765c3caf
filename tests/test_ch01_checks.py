"""The checks of chapter 01: right answers pass, and each typical mistake gets a report that names it."""

import numpy as np
import pytest

import minigraph as mg


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def naive_softmax(z):
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def softmax_shifted_by_the_global_maximum(z):
    e = np.exp(z - z.max())
    return e / e.sum(axis=-1, keepdims=True)


def softmax_in_place(z):
    z -= z.max(axis=-1, keepdims=True)
    return naive_softmax(z)


def cross_entropy(logits, labels):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels].mean()


def summed_cross_entropy(logits, labels):
    return cross_entropy(logits, labels) * len(labels)


def log_of_softmax_cross_entropy(logits, labels):
    return -np.log(softmax(logits)[np.arange(len(labels)), labels]).mean()


def gradients(W, b, x, labels):
    dh = softmax(x @ W + b) - np.eye(W.shape[1])[labels]
    return x.T @ dh / len(labels), dh.mean(axis=0)


def gradients_without_mean(W, b, x, labels):
    dh = softmax(x @ W + b) - np.eye(W.shape[1])[labels]
    return x.T @ dh, dh.sum(axis=0)


def sgd_epoch(params, grad_fn, x, labels, lr, batch_size, rng):
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        batch = order[start : start + batch_size]
        for param, grad in zip(params, grad_fn(x[batch], labels[batch])):
            param -= lr * grad


def sgd_epoch_rebinding(params, grad_fn, x, labels, lr, batch_size, rng):
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        batch = order[start : start + batch_size]
        for i, grad in enumerate(grad_fn(x[batch], labels[batch])):
            params[i] = params[i] - lr * grad


def sgd_epoch_unshuffled(params, grad_fn, x, labels, lr, batch_size, rng):
    for start in range(0, len(x), batch_size):
        for param, grad in zip(params, grad_fn(x[start : start + batch_size], labels[start : start + batch_size])):
            param -= lr * grad


def sgd_epoch_dropping_the_last_batch(params, grad_fn, x, labels, lr, batch_size, rng):
    order = rng.permutation(len(x))
    for start in range(0, len(x) - batch_size + 1, batch_size):
        batch = order[start : start + batch_size]
        for param, grad in zip(params, grad_fn(x[batch], labels[batch])):
            param -= lr * grad


def train_counting_from_zero(x_train, y_train, x_test, y_test, epochs=10, lr=0.5, batch_size=100, seed=0):
    rng = np.random.default_rng(seed)
    W, b = np.zeros((x_train.shape[1], 10), np.float32), np.zeros(10, np.float32)
    history = {key: [] for key in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")}
    for epoch in range(epochs):
        sgd_epoch([W, b], lambda xb, yb: gradients(W, b, xb, yb), x_train, y_train, lr, batch_size, rng)
        history["epoch"].append(epoch)
        for split, x, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
            history[f"{split}_loss"].append(cross_entropy(x @ W + b, labels))
            history[f"{split}_acc"].append(np.mean((x @ W + b).argmax(axis=1) == labels))
    return W, b, history


def train_with_unsolved_pieces(x_train, y_train, x_test, y_test, epochs=10, lr=0.5, batch_size=100, seed=0):
    raise NotImplementedError("Exercise 1.4")


def train_in_float64(x_train, y_train, x_test, y_test, epochs=10, lr=0.5, batch_size=100, seed=0):
    rng = np.random.default_rng(seed)
    W, b = np.zeros((x_train.shape[1], 10)), np.zeros(10)
    history = {key: [] for key in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")}
    for epoch in range(1, epochs + 1):
        sgd_epoch([W, b], lambda xb, yb: gradients(W, b, xb, yb), x_train, y_train, lr, batch_size, rng)
        history["epoch"].append(epoch)
        for split, x, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
            history[f"{split}_loss"].append(cross_entropy(x @ W + b, labels))
            history[f"{split}_acc"].append(np.mean((x @ W + b).argmax(axis=1) == labels))
    return W, b, history


def sgd_epoch_with_the_package_batches(params, grad_fn, x, labels, lr, batch_size, rng):
    for x_batch, labels_batch in mg.datasets.batches(x, labels, batch_size, rng):
        for param, grad in zip(params, grad_fn(x_batch, labels_batch)):
            param -= lr * grad


def softmax_with_an_axis(z, axis):
    return softmax(z)


@pytest.mark.parametrize(
    "exercise, function",
    [("1.1", softmax), ("1.2", cross_entropy), ("1.3", gradients), ("1.4", sgd_epoch)],
)
def test_a_right_answer_passes(exercise, function, run_check):
    result, report = run_check(exercise, function)
    assert result and report.startswith(f"✓ Exercise {exercise}")


@pytest.mark.parametrize(
    "exercise, function, diagnosis",
    [
        ("1.1", naive_softmax, "softmax(z) holds nan: np.exp(10000.0) overflows to inf, and inf / inf is nan. "
                               "Nothing was subtracted from z"),
        ("1.1", softmax_shifted_by_the_global_maximum, "after subtracting that one maximum they all underflow to "
                                                       "e^-20000 = 0, and 0 / 0 is nan. Subtract each row's own maximum"),
        ("1.1", softmax_in_place, "your function changed its input z in place"),
        ("1.2", summed_cross_entropy, "this is the sum over the batch: the loss is the mean"),
        ("1.2", log_of_softmax_cross_entropy, "the loss is inf, expected 10000"),
        ("1.3", gradients_without_mean, "dW is N times too large"),
        ("1.4", sgd_epoch_rebinding, "the arrays in params did not change: update them in place"),
        ("1.4", sgd_epoch_unshuffled, "minibatch 1 (the indices of its examples"),
        ("1.4", sgd_epoch_dropping_the_last_batch, "the number of calls of grad_fn"),
        ("1.5", train_counting_from_zero, 'history["epoch"] is wrong'),
        ("1.5", train_in_float64, "W is float64; the exercise asks for float32 parameters"),
    ],
)
def test_a_typical_mistake_is_named_with_input_expected_got_and_hint(exercise, function, diagnosis, run_check):
    result, report = run_check(exercise, function)
    assert not result and result.status == "failed"
    assert report.startswith(f"✗ Exercise {exercise}") and diagnosis in report, report
    assert " input" in report and 'hint: ' in report and f'More: hint("{exercise}")' in report
    assert "Traceback" not in report


def test_the_input_shown_is_the_one_before_the_function_changed_it(run_check):
    _, report = run_check("1.1", softmax_in_place)
    assert "input z before the call: [[1. 2. 3.]] input z after it: [[-2. -1. 0.]]" in report


def test_the_package_batches_are_not_an_sgd_epoch_of_ones_own(run_check):
    result, report = run_check("1.4", sgd_epoch_with_the_package_batches)
    assert not result and "your code called mg.datasets.batches, minigraph's own version" in report


def test_wrong_parameters_name_the_exercises(run_check):
    result, report = run_check("1.1", softmax_with_an_axis)
    assert not result and "the check calls softmax(z), which your softmax(z, axis) cannot take" in report


def test_training_that_needs_an_unsolved_exercise_says_which(run_check):
    result, report = run_check("1.5", train_with_unsolved_pieces)
    assert result.status == "not implemented"
    assert "not implemented yet — it needs exercise 1.4 first" in report
