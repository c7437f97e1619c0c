"""An executable image pipeline on scikit-learn's bundled handwritten digits.

Stages, each a real computation on this machine's CPU:

* ``preprocess`` — knob ``resolution`` (4, 6 or 8 pixels a side): block-averages the 8x8 image
  down to the resolution and scales it to [0, 1];
* ``classify`` — knob ``model`` (the resolution is that of its input): ``logreg``
  (multinomial logistic regression), ``mlp-small`` (one hidden layer of 32), ``mlp-large``
  (two of 256), ``forest`` (200 trees); trained deterministically on the first 1,000 digits at
  each resolution on first use and cached on disk, then evaluated on the remaining 797;
* ``postprocess`` — turns class scores into a label.

Nothing is downloaded: the digits ship inside scikit-learn (UCI optical digits, 1,797 images).
Each stage factory takes its configuration and returns a callable on a batch (a list of
inputs), the shape every executable operator has (:mod:`circinus.executable.base`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from circinus.executable.base import Batch, Dataset

TRAIN = 1000
"""Digits used for training; the rest are the profiling inputs (797 images)."""
RESOLUTIONS = (4, 6, 8)
MODELS = ("logreg", "mlp-small", "mlp-large", "forest")

@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype(np.float64), data.target.astype(int)


COPIES = 5
"""Each held-out digit as scanned, and four copies with sensor noise."""
NOISE = 2.0
"""Standard deviation of the sensor noise, in grey levels (of 16)."""


def dataset() -> Dataset:
    """The profiling inputs: the 797 held-out digits as scanned, then four more passes over
    them with Gaussian sensor noise (sd 2 grey levels of 16, clipped, seeded): 3,985 images.
    Features for the strata: ink mass and ink spread."""
    images, labels = _digits()
    held = images[TRAIN:]
    rng = np.random.default_rng(0)
    copies = [held] + [np.clip(held + rng.normal(0.0, NOISE, held.shape), 0.0, 16.0)
                       for _ in range(COPIES - 1)]
    inputs = [img for copy in copies for img in copy]
    ink = np.array(inputs).reshape(len(inputs), -1)
    features = np.column_stack([ink.mean(axis=1), ink.std(axis=1)])
    return Dataset(inputs, [int(y) for y in labels[TRAIN:]] * COPIES, features)


def downsample(image: np.ndarray, resolution: int) -> np.ndarray:
    """Block-average an 8x8 image (values 0-16) to ``resolution``^2 values in [0, 1].

    Example: a uniform image of 16s becomes all ones at any resolution.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    edges = np.linspace(0, 8, resolution + 1).round().astype(int)
    out = np.empty((resolution, resolution))
    for i in range(resolution):
        for j in range(resolution):
            out[i, j] = image[edges[i]:edges[i + 1], edges[j]:edges[j + 1]].mean()
    return (out / 16.0).ravel()


def preprocess(config: dict[str, Any]) -> Batch:
    """The ``preprocess`` stage for ``config = {"resolution": r}``."""
    resolution = int(config["resolution"])
    return lambda batch: [downsample(np.asarray(x), resolution) for x in batch]


def _estimator(model: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if model == "logreg":
        return LogisticRegression(max_iter=2000)
    if model == "mlp-small":
        return MLPClassifier(hidden_layer_sizes=(32,), max_iter=2000, random_state=0)
    if model == "mlp-large":
        return MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=2000, random_state=0)
    if model == "forest":
        return RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1)
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")


def cache_dir() -> Path:
    """Where trained models are kept: ``$CIRCINUS_CACHE`` or ``~/.cache/circinus``."""
    return Path(os.environ.get("CIRCINUS_CACHE", Path.home() / ".cache" / "circinus"))


def trained(model: str, resolution: int) -> Any:
    """The classifier ``model`` trained on the first digits at ``resolution``, from the disk
    cache when a previous run trained it (training is deterministic, so the cache only saves
    time)."""
    import sklearn

    tag = f"digits-{model}-r{resolution}-sk{sklearn.__version__}"
    path = cache_dir() / f"{tag}-{hashlib.sha1(tag.encode()).hexdigest()[:8]}.pkl"
    if path.exists():
        with path.open("rb") as fh:  # our own cache file, written below by this function
            return pickle.load(fh)
    images, labels = _digits()
    x = np.array([downsample(img, resolution) for img in images[:TRAIN]])
    clf = _estimator(model).fit(x, labels[:TRAIN])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        pickle.dump(clf, fh)
    tmp.replace(path)  # atomic: concurrent trainers never see half a file
    return clf


@cache
def _loaded(model: str, resolution: int) -> Any:
    """:func:`trained`, kept in memory once loaded (a stage runs once per input)."""
    return trained(model, resolution)


def classify(config: dict[str, Any]) -> Batch:
    """The ``classify`` stage for ``config = {"model": m}``: class scores. The classifier is
    the one trained at the resolution of the input (r * r values)."""
    model = str(config["model"])
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")

    def run(batch: Sequence[Any]) -> list[Any]:
        x = np.array(batch)
        clf = _loaded(model, round(float(np.sqrt(x.shape[1]))))
        return list(clf.predict_proba(x))

    return run


def postprocess(config: dict[str, Any]) -> Batch:
    """The ``postprocess`` stage: the most likely class."""
    return lambda batch: [int(np.argmax(scores)) for scores in batch]
