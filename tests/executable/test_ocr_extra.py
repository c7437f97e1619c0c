"""Without the `examples` extra, the OCR stages stop with one line naming it."""

from __future__ import annotations

import sys

import pytest

from circinus.executable import ocr
from circinus.executable.base import ImplementationError


@pytest.mark.parametrize("stage", ["detect", "angle", "recognise"])
def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    for loader in (ocr._detector, ocr._classifier, ocr._recogniser):
        loader.cache_clear()
    config = {"detect": {"limit_side_len": 96}, "angle": {"enabled": True},
              "recognise": {}}[stage]
    with pytest.raises(ImplementationError, match=r"pip install 'circinus\[examples\]'"):
        getattr(ocr, stage)(config)
    for loader in (ocr._detector, ocr._classifier, ocr._recogniser):
        loader.cache_clear()
