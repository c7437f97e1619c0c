"""What every executable pipeline provides: stage factories and a labelled dataset.

A world names them by import path (``"package.module:attribute"``): an operator's
``implementation`` is a factory ``factory(config) -> run`` where ``run`` maps a batch (a list of
inputs) to a list of outputs; a pipeline's ``dataset`` is a function returning a
:class:`Dataset`. A stage receives the outputs of the stage before it (of the source for the
first stage); the pipeline's sink output is compared with the label by ``Dataset.correct``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from circinus.errors import CircinusError

Batch = Callable[[Sequence[Any]], list[Any]]
Factory = Callable[[dict[str, Any]], Batch]


def _equal(output: Any, label: Any) -> bool:
    return bool(output == label)


@dataclass(frozen=True)
class Dataset:
    """Profiling inputs with their labels and the features strata are built from.

    ``features`` has one row per input (e.g. image size and ink mass, text length);
    ``correct(output, label)`` says whether the pipeline got one input right (default:
    equality).
    """

    inputs: list[Any]
    labels: list[Any]
    features: np.ndarray
    correct: Callable[[Any, Any], bool] = field(default=_equal)

    def __post_init__(self) -> None:
        if not (len(self.inputs) == len(self.labels) == self.features.shape[0]):
            raise ValueError(
                f"dataset: {len(self.inputs)} inputs, {len(self.labels)} labels and "
                f"{self.features.shape[0]} feature rows; they must be equal")


class ImplementationError(CircinusError):
    """An operator implementation or a dataset named by a world cannot be loaded or run."""

    exit_code = 2


def load(target: str, *, field_name: str) -> Any:
    """The object named ``"package.module:attribute"``; one-line error naming ``field_name``.

    Example: ``load("circinus.executable.digits:classify", field_name="operators[1]...")``.
    """
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ImplementationError(
            f"{field_name}: {target!r} is not of the form 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImplementationError(
            f"{field_name}: cannot import {module_name!r} ({exc}); install the package that "
            "provides it or fix the path") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ImplementationError(
            f"{field_name}: module {module_name!r} has no attribute {attribute!r}") from None
