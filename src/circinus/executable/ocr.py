"""An executable OCR pipeline on RapidOCR's bundled PP-OCR models, on rendered text images.

Stages, each a real computation on this machine's CPU (onnxruntime, one intra-op thread):

* ``detect`` — knob ``limit_side_len`` (96, 160 or 320 pixels): the image is scaled so that its
  longer side is at most this (the images are 320 wide, so 320 is full size) and the PP-OCRv4
  text detector finds the text boxes; outputs the crops of the full-size image, in reading
  order. A small side is cheap but loses small text;
* ``angle`` — knob ``enabled`` (``true`` or ``false``): the text-direction classifier turns
  crops it judges upside down by 180 degrees (and, when most crops were, reverses their order,
  since the page was upside down); disabled, crops pass through unchanged and upside-down
  text is misread;
* ``recognise`` — no knob: the PP-OCRv4 recogniser reads each crop; outputs the texts joined
  by spaces. Its cost grows with the number of crops, so it is lower after a ``detect`` that
  found nothing.

On the first 240 images of :func:`dataset`, the full-size detector with the classifier reads about
0.97 of them right, the same without the classifier about 0.74 (it misreads every upside-down
image), and the smallest detector input about 0.25.

The models are those inside the PyPI package ``rapidocr-onnxruntime`` (RapidOCR, Apache-2.0,
https://github.com/RapidAI/RapidOCR; models converted from PaddleOCR, Apache-2.0); the
package's detector, classifier and recogniser classes do the work, with the package's own
default settings apart from the knobs and the thread count. Nothing is downloaded. The
dataset is rendered deterministically with Pillow's bundled font. Each stage factory takes its
configuration and returns a callable on a batch (a list of inputs), the shape every executable
operator has (:mod:`circinus.executable.base`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from circinus.executable.base import Batch, Dataset, ImplementationError

SIDES = (96, 160, 320)
"""Values of the ``detect`` knob ``limit_side_len``: the longer side the detector sees."""
WIDTH, HEIGHT = 320, 96
"""Size of every rendered image, pixels."""
SIZE = 960
"""Images in the dataset."""
SEED = 20240611
"""Seed of the dataset's text, sizes, grey levels, positions and noise."""
ROTATED = 0.25
"""Fraction of images rendered upside down."""
FONT_SIZES = (11, 14, 18, 24, 32)
"""Font sizes drawn from, pixels (shrunk where a long text would not fit the width)."""
WORDS = (
    "apple", "river", "stone", "cloud", "green", "north", "plant", "signal", "market",
    "bridge", "window", "silver", "orange", "garden", "motor", "paper", "light", "train",
    "cable", "sound", "water", "forest", "pilot", "camera", "rocket", "office", "summer",
    "winter", "engine", "button", "mirror", "ticket", "planet", "circle", "yellow", "castle",
    "harbor", "number", "travel", "letter", "energy", "doctor", "island", "museum", "coffee",
)


# --- the models -------------------------------------------------------------------------------


def _require() -> None:
    """One line naming the extra when RapidOCR or OpenCV is missing (checked before any model
    loads; the stages need both)."""
    try:
        import cv2  # noqa: F401
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ImplementationError(
            f"circinus.executable.ocr needs RapidOCR and OpenCV, which are not installed "
            f"({exc}); install them with `pip install 'circinus[examples]'`") from None


def _settings(section: str) -> dict[str, Any]:
    """The package's default settings for ``section`` (``Det``, ``Cls`` or ``Rec``) with its
    model path made absolute and onnxruntime held to one thread for stable timing."""
    import rapidocr_onnxruntime
    from rapidocr_onnxruntime.utils import read_yaml

    root = Path(rapidocr_onnxruntime.__file__).resolve().parent
    config: dict[str, Any] = dict(read_yaml(root / "config.yaml")[section])
    config["model_path"] = str(root / config["model_path"])
    config["intra_op_num_threads"] = 1
    config["inter_op_num_threads"] = 1
    return config


@cache
def _detector() -> Any:
    _require()
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector

    # NOTE: with limit_type "max" the package's TextDetector ignores limit_side_len for images
    # under 960 pixels (it uses 960), so the knob is applied by :func:`shrink` before the call;
    # "min" with the network's stride of 32 then leaves the shrunk image as it is (up to
    # rounding each side to a multiple of 32).
    config = _settings("Det")
    config["limit_type"] = "min"
    config["limit_side_len"] = 32
    return TextDetector(config)


@cache
def _classifier() -> Any:
    _require()
    from rapidocr_onnxruntime.ch_ppocr_cls import TextClassifier

    return TextClassifier(_settings("Cls"))


@cache
def _recogniser() -> Any:
    _require()
    from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer

    return TextRecognizer(_settings("Rec"))


# --- the stages -------------------------------------------------------------------------------


def _knob(config: dict[str, Any], stage: str, name: str, allowed: Sequence[Any]) -> Any:
    """``config[name]``, checked against ``allowed``; the config may hold nothing else."""
    extra = sorted(set(config) - {name})
    if extra:
        raise ValueError(f"{stage}: unknown knob(s) {extra}; the only knob is {name!r}")
    if name not in config:
        raise ValueError(f"{stage}: knob {name!r} is missing; give one of {list(allowed)}")
    value = config[name]
    if not any(value == a and type(value) is type(a) for a in allowed):
        raise ValueError(f"{stage}: knob {name!r} must be one of {list(allowed)}, got {value!r}")
    return value


def _crops(image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
    """The axis-aligned crop around each detected quadrilateral, in reading order."""
    from rapidocr_onnxruntime.main import RapidOCR

    out: list[np.ndarray] = []
    for box in RapidOCR.sorted_boxes(boxes):
        x0, y0 = np.floor(box.min(axis=0)).astype(int)
        x1, y1 = np.ceil(box.max(axis=0)).astype(int)
        crop = image[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1]
        if crop.shape[0] > 1 and crop.shape[1] > 1:
            out.append(np.ascontiguousarray(crop))
    return out


def shrink(image: np.ndarray, limit_side_len: int) -> np.ndarray:
    """``image`` scaled (area averaging) so that its longer side is at most ``limit_side_len``;
    unchanged if it already is.

    Example: a 96 x 320 image at 160 becomes 48 x 160.
    """
    import cv2

    height, width = image.shape[:2]
    scale = limit_side_len / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def _find(detector: Any, image: np.ndarray, side: int) -> list[np.ndarray]:
    small = shrink(image, side)
    boxes, _ = detector(small)
    if boxes is None or len(boxes) == 0:
        return []
    scale = np.array([image.shape[1] / small.shape[1], image.shape[0] / small.shape[0]])
    return _crops(image, boxes.astype(np.float64) * scale)


def detect(config: dict[str, Any]) -> Batch:
    """The ``detect`` stage for ``config = {"limit_side_len": s}``: per image (H x W x 3,
    uint8), the list of text crops of the full-size image in reading order (empty when
    nothing was found); the detector sees the image shrunk to ``s`` (:func:`shrink`)."""
    side = int(_knob(config, "detect", "limit_side_len", SIDES))
    detector = _detector()
    return lambda batch: [_find(detector, np.asarray(image), side) for image in batch]


def _upright(classifier: Any, crops: list[np.ndarray]) -> list[np.ndarray]:
    if not crops:
        return []
    turned, verdicts, _ = classifier(crops)
    flipped = sum(label == "180" and score > classifier.cls_thresh for label, score in verdicts)
    return list(turned[::-1] if 2 * flipped > len(turned) else turned)


def angle(config: dict[str, Any]) -> Batch:
    """The ``angle`` stage for ``config = {"enabled": b}``: the crops of each image, those the
    direction classifier judges upside down turned by 180 degrees (and their order reversed
    when they are the majority); with ``enabled: false`` the crops pass through."""
    if not _knob(config, "angle", "enabled", (True, False)):
        return lambda batch: [list(crops) for crops in batch]
    classifier = _classifier()
    return lambda batch: [_upright(classifier, list(crops)) for crops in batch]


def _read(recogniser: Any, crops: list[np.ndarray]) -> str:
    if not crops:
        return ""
    results, _ = recogniser(crops)
    return " ".join(str(result[0]) for result in results)


def recognise(config: dict[str, Any]) -> Batch:
    """The ``recognise`` stage (no knob, ``config = {}``): the text of each image, the texts
    of its crops joined by single spaces (empty when there were no crops)."""
    if config:
        raise ValueError(f"recognise: has no knobs, got {sorted(config)}")
    recogniser = _recogniser()
    return lambda batch: [_read(recogniser, list(crops)) for crops in batch]


# --- the dataset ------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Lower case without whitespace: the recogniser often drops the space between words
    (its model was trained mostly on Chinese, which has none), so spaces do not count.

    Example: ``normalise("  Green  RIVER 42 ") == "greenriver42"``.
    """
    return re.sub(r"\s+", "", text).lower()


def correct(output: Any, label: Any) -> bool:
    """Normalised exact match (:func:`normalise`: case-insensitive, whitespace ignored)."""
    return normalise(str(output)) == normalise(str(label))


def _phrase(rng: random.Random) -> str:
    tokens = []
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        if rng.random() < 0.3:
            tokens.append(str(rng.randrange(10, 100_000)))
        else:
            word = rng.choice(WORDS)
            tokens.append(word.capitalize() if rng.random() < 0.3 else word)
    return " ".join(tokens)


def fit(text: str, font_size: int) -> int:
    """The largest size up to ``font_size`` at which ``text`` fits the image width with a
    4-pixel margin each side, in Pillow's bundled font (never below 8)."""
    from PIL import ImageFont

    size = font_size
    while size > 8:
        left, _, right, _ = ImageFont.load_default(size=size).getbbox(text)
        if right - left <= WIDTH - 8:
            break
        size -= 1
    return size


def render(text: str, *, font_size: int, ink: int, paper: int, noise: float,
           rotated: bool, rng: random.Random) -> np.ndarray:
    """``text`` in Pillow's bundled font at ``font_size``, grey level ``ink`` on ``paper``, at
    a place drawn from ``rng`` where it fits, Gaussian noise of standard deviation ``noise``
    (grey levels), turned 180 degrees if ``rotated``; a ``HEIGHT x WIDTH x 3`` uint8 image."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=font_size)
    left, top, right, bottom = (round(v) for v in font.getbbox(text))
    x = rng.randint(4, max(4, WIDTH - 4 - (right - left))) - left
    y = rng.randint(4, max(4, HEIGHT - 4 - (bottom - top))) - top
    canvas = Image.new("L", (WIDTH, HEIGHT), color=paper)
    ImageDraw.Draw(canvas).text((x, y), text, fill=ink, font=font)
    if rotated:
        canvas = canvas.rotate(180)
    pixels = np.asarray(canvas, dtype=np.float64)
    noisy = pixels + np.random.default_rng(rng.randrange(2**32)).normal(0.0, noise, pixels.shape)
    grey = np.clip(noisy.round(), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def dataset() -> Dataset:
    """``SIZE`` rendered one-line texts (words and numbers) with their text as the label;
    features: text length, font size, contrast, noise, upside down (0/1).

    Deterministic (fixed seed): the same images on every call and machine with the pinned
    Pillow. ``correct`` is :func:`correct` (case-insensitive, whitespace ignored).
    """
    rng = random.Random(SEED)
    inputs, labels, rows = [], [], []
    for _ in range(SIZE):
        text = _phrase(rng)
        font_size = fit(text, rng.choice(FONT_SIZES))
        paper = rng.randint(170, 255)
        ink = rng.randint(0, paper - 80)
        noise = rng.uniform(0.0, 8.0)
        rotated = rng.random() < ROTATED
        inputs.append(render(text, font_size=font_size, ink=ink, paper=paper, noise=noise,
                             rotated=rotated, rng=rng))
        labels.append(text)
        rows.append([len(text), font_size, (paper - ink) / 255.0, noise, float(rotated)])
    return Dataset(inputs, labels, np.array(rows), correct=correct)
