"""The MNIST training that the checks of chapters 04-08 run with the learner's code, epoch by epoch."""

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")


def history_by_epoch(epochs, train_epoch, evaluate, data):
    """``train_epoch(epoch)`` for epochs 1 to ``epochs``, each followed by ``evaluate(images, labels) -> (loss,
    accuracy)`` on every split of ``data`` (``{"train": (images, labels), "test": ...}``): the history, a dict
    of lists under :data:`HISTORY_KEYS`, as the chapters record and plot it."""
    history = {key: [] for key in HISTORY_KEYS}
    for epoch in range(1, epochs + 1):
        train_epoch(epoch)
        history["epoch"].append(epoch)
        for split, (images, labels) in data.items():
            loss, accuracy = evaluate(images, labels)
            history[f"{split}_loss"].append(float(loss))
            history[f"{split}_acc"].append(float(accuracy))
    return history
