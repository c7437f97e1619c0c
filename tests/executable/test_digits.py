"""The digits pipeline runs for real, deterministically, with clearly different variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circinus.executable import digits


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCINUS_CACHE", str(tmp_path))


def _accuracy(model: str, resolution: int, n: int = 300) -> float:
    data = digits.dataset()
    config = {"model": model, "resolution": resolution}
    x = digits.preprocess(config)(data.inputs[:n])
    y = digits.postprocess(config)(digits.classify(config)(x))
    return float(np.mean(np.array(y) == np.array(data.labels[:n])))


def test_downsample_by_hand() -> None:
    image = np.zeros((8, 8))
    image[:4, :4] = 16.0  # top-left quadrant full of ink
    assert digits.downsample(image, 4).reshape(4, 4)[:2, :2].tolist() == [[1, 1], [1, 1]]
    assert digits.downsample(np.full((8, 8), 16.0), 6).tolist() == [1.0] * 36
    with pytest.raises(ValueError, match="resolution"):
        digits.downsample(image, 5)


def test_dataset_is_the_held_out_split_with_noisy_copies() -> None:
    data = digits.dataset()
    assert len(data.inputs) == len(data.labels) == 797 * digits.COPIES
    assert data.features.shape == (797 * digits.COPIES, 2)
    first, copy = np.asarray(data.inputs[0]), np.asarray(data.inputs[797])
    assert data.labels[0] == data.labels[797]
    assert 0 < np.abs(first - copy).mean() < 4  # the same digit, with sensor noise
    assert np.array_equal(np.asarray(digits.dataset().inputs[900]), np.asarray(data.inputs[900]))


def test_variants_differ_in_accuracy_and_are_deterministic(tmp_path: Path) -> None:
    low = _accuracy("logreg", 4)
    high = _accuracy("mlp-small", 8)
    assert 0.5 < low < high <= 1.0
    assert _accuracy("mlp-small", 8) == high  # second run comes from the cache, same model
    assert list(tmp_path.glob("digits-mlp-small-r8-*.pkl"))


def test_unknown_model_is_an_error() -> None:
    with pytest.raises(ValueError, match="model"):
        digits.classify({"model": "svm", "resolution": 8})
