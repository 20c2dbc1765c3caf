r"""Checks of chapter 00, the warm-up.

Exercise 0.1, the mean image of a digit: for the images $x_i$ (rows of ``images``) whose label is $d$,

$$\mu_d = \frac{1}{|S_d|} \sum_{i \in S_d} x_i, \qquad S_d = \{\, i : y_i = d \,\}.$$

The learner writes ``mean_digit(images, labels, digit)``; ``check("0.1", mean_digit)`` tries it on small
synthetic data, and also on every digit of real images when given: ``check("0.1", mean_digit,
images=test_images, labels=test_labels)``.
"""

import numpy as np

from .framework import CheckFailure, exercise, expect_close, expect_shape, read_only


def _reference_mean_digit(images, labels, digit):
    return images[labels == digit].mean(axis=0)


@exercise(
    "0.1",
    "the mean image of a digit",
    expects="mean_digit(images, labels, digit)",
    nudge="Pick the rows of one digit, then average them pixel by pixel.",
    hint="labels == digit is a boolean mask with one entry per image; indexing images with it keeps the rows "
    "of that digit. Their mean over axis 0 (the rows) is one value per pixel, 784 in all.",
)
def _(mean_digit, images=None, labels=None):
    tiny_images = np.array(
        [[0.0, 0.5, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.5], [0.5, 0.0, 0.0, 1.0]], np.float32
    )
    tiny_labels = np.array([7, 1, 7, 3])
    rng = np.random.default_rng(0)
    random_images = rng.random((30, 784), dtype=np.float32)
    random_labels = rng.permutation(np.arange(30) % 10)  # three images of each digit
    cases = [(tiny_images, tiny_labels, 7), (tiny_images, tiny_labels, 3), (random_images, random_labels, 4)]
    for case_images, case_labels, digit in cases:
        _expect_mean_digit(mean_digit, case_images, case_labels, digit)
    summary = f"{len(cases)} cases"
    if images is not None or labels is not None:
        _expect_dataset(images, labels)
        for digit in range(10):
            _expect_mean_digit(mean_digit, images, labels, digit)
        summary += f", and all 10 digits of the {len(labels):,} images you passed"
    return summary


def _expect_mean_digit(mean_digit, images, labels, digit):
    """One case: the learner's mean image against the reference, on read-only views of the inputs."""
    given = {"images": images, "labels": labels, "digit": digit}
    got = mean_digit(read_only(images), read_only(labels), digit)
    expect_shape(got, (images.shape[1],), input=given, what=f"the mean image of digit {digit}")
    expected = _reference_mean_digit(images, labels, digit)
    expect_close(got, expected, input=given, rtol=1e-4, atol=1e-6, what=f"the mean image of digit {digit}")


def _expect_dataset(images, labels):
    """The optional real data must be a batch of flat images with one label each, covering every digit."""
    if not (isinstance(images, np.ndarray) and images.ndim == 2 and isinstance(labels, np.ndarray)):
        raise CheckFailure("images= and labels= should be the arrays returned by load_mnist, passed together")
    if labels.shape != (len(images),) or not np.isin(np.arange(10), labels).all():
        raise CheckFailure(
            f"labels= should hold one label per image and every digit 0-9: got {len(labels)} labels "
            f"for {len(images)} images"
        )
