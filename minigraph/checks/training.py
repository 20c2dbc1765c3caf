"""The MNIST training that the checks run with the learner's code: the data, and its history of losses and
accuracies, as the chapters record and plot it."""

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")


def mnist_splits():
    """``{"train": (images, labels), "test": (images, labels)}``: MNIST, loaded only when a check trains on it."""
    from ..datasets import load_mnist

    return {"train": load_mnist("train"), "test": load_mnist("test")}


def record(history, evaluate, data):
    """Append ``evaluate(images, labels) -> (loss, accuracy)`` on every split of ``data`` (``{"train": (images,
    labels), "test": ...}``) to the history's lists ``<split>_loss`` and ``<split>_acc``."""
    for split, (images, labels) in data.items():
        loss, accuracy = evaluate(images, labels)
        history[f"{split}_loss"].append(float(loss))
        history[f"{split}_acc"].append(float(accuracy))


def history_by_epoch(epochs, train_epoch, evaluate, data):
    """``train_epoch(epoch)`` for epochs 1 to ``epochs``, each followed by :func:`record`: the history, a dict
    of lists under :data:`HISTORY_KEYS`."""
    history = {key: [] for key in HISTORY_KEYS}
    for epoch in range(1, epochs + 1):
        train_epoch(epoch)
        history["epoch"].append(epoch)
        record(history, evaluate, data)
    return history
