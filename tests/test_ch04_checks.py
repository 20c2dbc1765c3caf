"""The checks of chapter 04: right answers pass, and each typical mistake gets a report that names it.

The MNIST training of exercise 4.5 runs in the solution notebook (nbval); here it is replaced by a stub
that returns a fixed history, so that the steps compared before any training are tested quickly.
"""

import numpy as np
import pytest

import minigraph as mg
from minigraph.checks import ch04, check

# ---------------------------------------------------------------------------------------------- answers


def momentum_step(theta, grad, velocity, lr, momentum, nesterov=False):
    new_velocity = momentum * velocity + grad
    direction = grad + momentum * new_velocity if nesterov else new_velocity
    return theta - lr * direction, new_velocity


def nesterov_with_the_old_velocity(theta, grad, velocity, lr, momentum, nesterov=False):
    new_velocity = momentum * velocity + grad
    direction = grad + momentum * velocity if nesterov else new_velocity
    return theta - lr * direction, new_velocity


def momentum_in_place(theta, grad, velocity, lr, momentum, nesterov=False):
    velocity *= momentum
    velocity += grad
    return theta - lr * velocity, velocity


def adam_step(theta, grad, m, v, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return theta - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps), m, v


def adam_with_eps_inside_the_root(theta, grad, m, v, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return theta - lr * (m / (1 - beta1**t)) / np.sqrt(v / (1 - beta2**t) + eps), m, v


def adam_without_bias_correction(theta, grad, m, v, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    return theta - lr * m / (np.sqrt(v) + eps), m, v


def adam_returning_corrected_averages(theta, grad, m, v, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
    m = (beta1 * m + (1 - beta1) * grad) / (1 - beta1**t)
    v = (beta2 * v + (1 - beta2) * grad**2) / (1 - beta2**t)
    return theta - lr * m / (np.sqrt(v) + eps), m, v


def he_normal(shape, *, seed=None, rng=None, dtype="float32"):
    rng = mg.init.generator(seed, rng)
    return rng.normal(0.0, np.sqrt(2.0 / shape[0]), size=shape).astype(dtype)


def he_from_standard_normal_in_float32(shape, *, seed=None, rng=None, dtype="float32"):
    rng = mg.init.generator(seed, rng)
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / shape[0]))).astype(dtype)


def he_with_fan_out(shape, *, seed=None, rng=None, dtype="float32"):
    rng = mg.init.generator(seed, rng)
    return rng.normal(0.0, np.sqrt(2.0 / shape[1]), size=shape).astype(dtype)


def he_uniform(shape, *, seed=None, rng=None, dtype="float32"):
    rng = mg.init.generator(seed, rng)
    limit = np.sqrt(6.0 / shape[0])
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def he_from_global_state(shape, *, seed=None, rng=None, dtype="float32"):
    return np.random.normal(0.0, np.sqrt(2.0 / shape[0]), size=shape).astype(dtype)


def he_ignoring_dtype(shape, *, seed=None, rng=None, dtype="float32"):
    rng = mg.init.generator(seed, rng)
    return rng.normal(0.0, np.sqrt(2.0 / shape[0]), size=shape)


def l2_penalty(weights, rate):
    total = mg.reduce_sum(weights[0] * weights[0])
    for W in weights[1:]:
        total = total + mg.reduce_sum(W * W)
    return total * (rate / 2)


def l2_penalty_without_the_half(weights, rate):
    return sum(mg.reduce_sum(W * W) for W in weights) * rate


def l2_penalty_of_the_first_weight(weights, rate):
    return mg.reduce_sum(weights[0] * weights[0]) * (rate / 2)


def l2_penalty_in_numpy(weights, rate):
    return 0.0


def l2_penalty_per_row(weights, rate):
    return mg.reduce_sum(weights[0] * weights[0], axis=0) * (rate / 2)


class AdamW(mg.optim.Optimizer):
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, gradients=None):
        super().__init__(lr, gradients)
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    def moments(self, var, grad):
        m, v = self.slot(var, "m"), self.slot(var, "v")
        new_m = mg.assign(m, self.beta1 * m + (1 - self.beta1) * grad)
        new_v = mg.assign(v, self.beta2 * v + (1 - self.beta2) * grad * grad)
        return new_m / (1 - self.beta1**self.step), new_v / (1 - self.beta2**self.step)

    def update(self, var, grad):
        m_hat, v_hat = self.moments(var, grad)
        return mg.assign_sub(var, self.learning_rate * (m_hat / (mg.sqrt(v_hat) + self.eps) + self.weight_decay * var))


class AdamWInTwoAssigns(AdamW):
    def update(self, var, grad):
        m_hat, v_hat = self.moments(var, grad)
        adam = mg.assign_sub(var, self.learning_rate * m_hat / (mg.sqrt(v_hat) + self.eps))
        return [adam, mg.assign_sub(var, self.learning_rate * self.weight_decay * var)]


class AdamWithL2Penalty(AdamW):
    def update(self, var, grad):
        m_hat, v_hat = self.moments(var, grad + self.weight_decay * var)
        return mg.assign_sub(var, self.learning_rate * m_hat / (mg.sqrt(v_hat) + self.eps))


class AdamWithStaleAverages(AdamW):
    def update(self, var, grad):
        m, v = self.slot(var, "m"), self.slot(var, "v")
        mg.assign(m, self.beta1 * m + (1 - self.beta1) * grad)
        mg.assign(v, self.beta2 * v + (1 - self.beta2) * grad * grad)
        m_hat, v_hat = m / (1 - self.beta1**self.step), v / (1 - self.beta2**self.step)
        return mg.assign_sub(var, self.learning_rate * (m_hat / (mg.sqrt(v_hat) + self.eps) + self.weight_decay * var))


class AdamWithoutReturn(AdamW):
    def update(self, var, grad):
        m_hat, v_hat = self.moments(var, grad)
        mg.assign_sub(var, self.learning_rate * m_hat / (mg.sqrt(v_hat) + self.eps))


class AdamWFromAdam(mg.optim.Adam):
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, gradients=None):
        super().__init__(lr, beta1, beta2, eps, gradients)
        self.weight_decay = weight_decay


class AdamWCallingAdam(AdamWFromAdam):
    def update(self, var, grad):
        return [super().update(var, grad), mg.assign_sub(var, self.learning_rate * self.weight_decay * var)]


class AdamWStub(AdamW):
    def update(self, var, grad):
        raise NotImplementedError("Exercise 4.5")


FAKE_HISTORY = {"epoch": [1, 2, 3], "train_loss": [0.2, 0.1, 0.05], "train_acc": [0.95, 0.97, 0.98],
                "test_loss": [0.2, 0.1, 0.08], "test_acc": [0.95, 0.97, 0.975]}


@pytest.fixture
def no_mnist_training(monkeypatch):
    """Exercise 4.5 without its MNIST run: a fixed history stands in for the training."""
    monkeypatch.setattr(ch04, "_train_mnist", lambda optimizer_class: FAKE_HISTORY)


# ---------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("exercise, answer", [
    ("4.1", momentum_step),
    ("4.2", adam_step),
    ("4.2", adam_with_eps_inside_the_root),
    ("4.3", he_normal),
    ("4.3", he_from_standard_normal_in_float32),
    ("4.4", l2_penalty),
])
def test_a_right_answer_passes(capsys, exercise, answer):
    result = check(exercise, answer)
    report = capsys.readouterr().out
    assert result, report
    assert report.startswith(f"✓ Exercise {exercise}")


@pytest.mark.parametrize("answer", [AdamW, AdamWInTwoAssigns])
def test_a_right_optimizer_passes_and_hands_back_its_history(capsys, no_mnist_training, answer):
    result = check("4.5", answer)
    assert result, capsys.readouterr().out
    assert result.value is FAKE_HISTORY


@pytest.mark.filterwarnings("ignore:.*returned None:UserWarning")  # minimize's own word on AdamWithoutReturn
@pytest.mark.parametrize("exercise, answer, message", [
    ("4.1", nesterov_with_the_old_velocity, "the new theta differs"),
    ("4.1", momentum_in_place, "changed its input velocity in place"),
    ("4.2", adam_without_bias_correction, "3.16 times too long"),
    ("4.2", adam_returning_corrected_averages, "m after the first step differs"),
    ("4.3", he_with_fan_out, "fan_in = 1000"),
    ("4.3", he_uniform, "within one standard deviation"),
    ("4.3", he_from_global_state, "two calls with seed=7 gave different weights"),
    ("4.3", he_ignoring_dtype, "has dtype float64, expected float32"),
    ("4.4", l2_penalty_without_the_half, "the penalty's value is"),
    ("4.4", l2_penalty_of_the_first_weight, "the penalty's value is"),
    ("4.4", l2_penalty_in_numpy, "should be a graph node"),
    ("4.4", l2_penalty_per_row, "should be a scalar node"),
    ("4.5", AdamWithL2Penalty, "this is Adam with an L2 penalty"),
    ("4.5", AdamWithStaleAverages, "w did not move in the first step"),
    ("4.5", AdamWithoutReturn, "the update node never writes w"),
    ("4.5", AdamW(), "pass the class itself"),
])
def test_a_typical_mistake_is_named(capsys, no_mnist_training, exercise, answer, message):
    result = check(exercise, answer)
    report = capsys.readouterr().out
    assert not result and result.status == "failed"
    assert message in report, report
    assert "hint:" in report


def test_an_unfinished_optimizer_is_not_implemented_yet(capsys, no_mnist_training):
    result = check("4.5", AdamWStub)
    assert result.status == "not implemented"
    assert "not implemented yet" in capsys.readouterr().out


def test_the_mnist_check_reports_an_optimizer_that_does_not_learn(capsys, monkeypatch):
    weak = {**FAKE_HISTORY, "test_acc": [0.5, 0.6, 0.7]}
    monkeypatch.setattr(ch04, "_train_mnist", lambda optimizer_class: weak)
    result = check("4.5", AdamW)
    report = capsys.readouterr().out
    assert not result and "the test accuracy is 0.7000" in report and "[0.5, 0.6, 0.7]" in report


@pytest.mark.parametrize("exercise, answer, name", [
    ("4.3", mg.init.he_normal, "you passed mg.init.he_normal itself"),
    ("4.3", lambda shape, *, seed=None, rng=None, dtype="float32": mg.init.he_normal(shape, seed=seed, rng=rng,
                                                                                  dtype=dtype),
     "your code called mg.init.he_normal"),
    ("4.4", mg.nn.weight_decay, "you passed mg.nn.weight_decay itself"),
    ("4.4", lambda weights, rate: rate * sum(mg.nn.l2_loss(w) for w in weights), "your code called mg.nn.l2_loss"),
    ("4.5", AdamWFromAdam, "you passed a class whose update is mg.optim.Adam.update"),
    ("4.5", AdamWCallingAdam, "your code called mg.optim.Adam.update"),
])
def test_the_packages_own_implementation_does_not_pass(run_check, no_mnist_training, exercise, answer, name):
    result, report = run_check(exercise, answer)
    assert not result and name in report and "minigraph's own version" in report, report


def test_wrong_parameters_are_named(run_check):
    result, report = run_check("4.2", lambda theta, grad, m, v, t: (theta, m, v))
    assert not result
    assert ("the check calls adam_step(theta, grad, m, v, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08), which "
            "your adam_step(theta, grad, m, v, t) cannot take (got an unexpected keyword argument 'lr')") in report
