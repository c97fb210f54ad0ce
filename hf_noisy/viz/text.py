"""Text for overlays: a font scaled to the picture, and labels drawn as light text on a semi-opaque dark box.

The font is Pillow's bundled scalable one (``ImageFont.load_default(size=...)``, Pillow >= 10.1 with FreeType, as
in Pillow's wheels), so that the same input gives the same pixels on every machine with the same Pillow. Pictures
are BGR ``uint8`` arrays, as OpenCV reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import HfNoisyError
from .placement import Box

__all__ = ["Label", "draw_labels", "fit_text", "label_size", "load_font", "text_px"]

Font = ImageFont.FreeTypeFont


def text_px(height: int, width: int) -> int:
    """Label font size in pixels for a ``height`` x ``width`` picture: 2.2% of the shorter side, at least 12."""
    return max(12, round(0.022 * min(height, width)))


def load_font(px: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``px`` pixels; :class:`~hf_noisy.errors.HfNoisyError` where Pillow has no FreeType."""
    from PIL import features

    if not features.check("freetype2"):
        raise HfNoisyError("overlays need Pillow built with FreeType (Pillow's wheels are); this one is not")
    return ImageFont.load_default(size=px)


def _pad(font: Font) -> int:
    return max(2, round(font.size / 5))


def label_size(font: Font, text: str) -> tuple[int, int]:
    """Width and height in pixels of the box :func:`draw_labels` draws for ``text`` (text, padding, swatch)."""
    ascent, descent = font.getmetrics()
    pad = _pad(font)
    return round(font.getlength(text)) + 3 * pad + _swatch(font), ascent + descent + 2 * pad


def _swatch(font: Font) -> int:
    return max(3, round(font.size / 4))


def fit_text(font: Font, text: str, width: int) -> str:
    """``text``, cut and ended with an ellipsis where its label box would be wider than ``width`` pixels."""
    if label_size(font, text)[0] <= width:
        return text
    while text and label_size(font, text + "…")[0] > width:
        text = text[:-1]
    return text.rstrip() + "…"


@dataclass(frozen=True)
class Label:
    """One label: its box (from :func:`~hf_noisy.viz.placement.place_labels`), text, text colour (BGR), the
    colour of the swatch at its left end (BGR: the instance it names), and where a leader line ends (or None)."""

    box: Box
    text: str
    colour: tuple[int, int, int]
    swatch: tuple[int, int, int]
    leader_to: tuple[int, int] | None = None


def draw_labels(picture: np.ndarray, labels: Sequence[Label], font: Font) -> np.ndarray:
    """A copy of ``picture`` with each label drawn: leader line (white on black), a box darkening what is under
    it to 30%, the swatch, and the text."""
    import cv2

    out = picture.copy()
    for label in labels:
        if label.leader_to is not None:
            x0, y0, x1, y1 = label.box
            start = (min(max(label.leader_to[0], x0), x1 - 1), min(max(label.leader_to[1], y0), y1 - 1))
            cv2.line(out, start, label.leader_to, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.line(out, start, label.leader_to, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.circle(out, label.leader_to, 2, (255, 255, 255), -1, cv2.LINE_AA)
    for label in labels:
        x0, y0, x1, y1 = label.box
        out[y0:y1, x0:x1] = (out[y0:y1, x0:x1] * 0.3).astype(np.uint8)
        out[y0:y1, x0 : x0 + _swatch(font)] = label.swatch
    image = Image.fromarray(np.ascontiguousarray(out[:, :, ::-1]))
    draw = ImageDraw.Draw(image)
    pad = _pad(font)
    for label in labels:
        x0, y0 = label.box[:2]
        draw.text((x0 + _swatch(font) + pad + pad // 2, y0 + pad), label.text, font=font, fill=label.colour[::-1])
    return np.asarray(image)[:, :, ::-1].copy()
