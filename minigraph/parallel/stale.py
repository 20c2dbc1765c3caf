"""An asynchronous parameter server, simulated: training with stale gradients.

A parameter server holds the weights. Workers pull them, compute a gradient on a minibatch of their own
and push it back, each at its own pace; the server applies every gradient as soon as it arrives, and no
worker ever waits for another. The price is staleness: while a worker computed, the server applied the
gradients of the others, so the gradient it pushes was computed at weights several updates old. With N
workers taking turns, every gradient is N - 1 updates old.

The simulation fixes that delay at ``staleness`` s: step t applies the gradient of minibatch t taken at the
weights of s steps before (the first weights while t < s),

    w_{t+1} = w_t - η ∇L_t(w_{t-s});

s = 0 is plain (synchronous) SGD. One Session plays the server (it holds the current weights and runs
the optimizer), another the workers (it is loaded with the stale weights to compute each gradient).
"""

from collections import deque

from ..session import Session
from .data_parallel import GradientStep
from .training import endless_batches, evaluate


def train_stale(model, optimizer, staleness, data, steps, batch_size=64, every=50,
                evaluate_on=None, seed=0):
    """Train ``model`` (a :func:`~.training.mlp`) with gradients ``staleness`` steps old; return
    its history.

    ``data`` is ``(images, labels)``; minibatches come from :func:`~.training.endless_batches`
    with ``seed``. Every ``every`` steps the history records the step, the mean minibatch loss
    since the last record ("train_loss", as the workers saw it, at their stale weights) and, for
    each ``name: (images, labels)`` of ``evaluate_on``, the loss and accuracy of the server's
    weights ("name_loss", "name_acc").
    """
    if staleness < 0 or steps < 1 or every < 1:
        raise ValueError("need staleness >= 0, steps >= 1 and every >= 1; "
                         f"got {staleness}, {steps} and {every}")
    step_graph = GradientStep(model.loss, optimizer, model.variables)
    server, worker = Session(), Session()
    pulled = deque([server.run(model.variables)], maxlen=staleness + 1)  # the last s + 1
    history, losses = {"step": []}, []
    for step, (images, labels) in enumerate(endless_batches(*data, batch_size, seed), start=1):
        for variable, value in zip(model.variables, pulled[0]):
            worker.set_value(variable, value)
        shard = {model.x: images, model.y: labels}
        gradient, loss = step_graph.gradient(worker, [shard], batch_size)
        step_graph.apply(server, gradient)
        pulled.append(server.run(model.variables))
        losses.append(loss)
        if step % every == 0 or step == steps:
            history["step"].append(step)
            history.setdefault("train_loss", []).append(sum(losses) / len(losses))
            losses.clear()
            for name, (eval_images, eval_labels) in (evaluate_on or {}).items():
                eval_loss, eval_accuracy = evaluate(server, model, eval_images, eval_labels)
                history.setdefault(f"{name}_loss", []).append(eval_loss)
                history.setdefault(f"{name}_acc", []).append(eval_accuracy)
        if step == steps:
            return history
