"""One overlay panel (masks, outlines, marks and placed labels on a picture) and the frame around panels (a title
strip above, a legend strip below: neither covers the picture).

Conventions: pictures are BGR ``uint8`` arrays; masks are ``uint8`` arrays of the picture's size (0/1); colours
are BGR triples; sizes and coordinates are pixels. Text size comes from :func:`~hf_noisy.viz.text.text_px` of the
picture, so labels keep the same share of the picture whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .placement import place_labels
from .text import Font, Label, draw_labels, fit_text, label_size, load_font, text_px

__all__ = ["RED", "BoxMark", "Item", "LegendEntry", "Panel", "compose", "draw_panel", "title_height"]

#: Colour (BGR) of the dashed boxes that mark removed instances.
RED = (40, 40, 230)
_WHITE = (255, 255, 255)
_STRIP = (32, 32, 32)  # title and legend strips
_GAP = 6  # white pixels between panels


@dataclass(frozen=True)
class Item:
    """An instance to draw: its mask, fill colour (the class), label text, an outline colour when it is to stand
    out (a noise op; thick), ``crowd`` for a dashed white outline, ``key`` to point arrows at it, and ``first``
    to have its label placed before the others'."""

    mask: np.ndarray
    colour: tuple[int, int, int]
    label: str
    outline: tuple[int, int, int] | None = None
    crowd: bool = False
    key: object = None
    first: bool = False


@dataclass(frozen=True)
class BoxMark:
    """A dashed box ``(x0, y0, x1, y1)`` with a label, in ``colour``: where an instance is not drawn as a mask
    (removed by noise, or with an empty mask)."""

    box: tuple[int, int, int, int]
    label: str
    colour: tuple[int, int, int] = RED


@dataclass(frozen=True)
class LegendEntry:
    """One legend entry: a sample (``"fill"``: a colour square, ``"outline"``: a thick outline, ``"dashed"``: a
    dashed box, ``"crowd"``: a dashed white outline, ``"arrow"``, ``"none"``: text only) and its text."""

    sample: str
    text: str
    colour: tuple[int, int, int] = _WHITE


@dataclass(frozen=True)
class Panel:
    """A drawn panel: the picture, its title, the labels drawn on it, and how many found no room (left out)."""

    picture: np.ndarray
    title: str
    labels: tuple[Label, ...] = ()
    hidden: int = 0


def _dashed_rectangle(out: np.ndarray, box: tuple[int, int, int, int], colour: tuple, dash: int,
                      thickness: int) -> None:
    x0, y0, x1, y1 = box
    for xa in range(x0, x1, 2 * dash):
        for y in (y0, y1):
            cv2.line(out, (xa, y), (min(xa + dash, x1), y), colour, thickness)
    for ya in range(y0, y1, 2 * dash):
        for x in (x0, x1):
            cv2.line(out, (x, ya), (x, min(ya + dash, y1)), colour, thickness)


def _anchor(mask: np.ndarray) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """The mask's tight box (x1, y1 exclusive) and the mask pixel nearest its centroid (where a leader ends)."""
    ys, xs = np.nonzero(mask)
    cx, cy = xs.mean(), ys.mean()
    nearest = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), (int(xs[nearest]), int(ys[nearest]))


def _clip(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` with its corners (inclusive) moved inside a ``width`` x ``height`` picture."""
    x0, y0, x1, y1 = box
    return (min(max(x0, 0), width - 1), min(max(y0, 0), height - 1),
            min(max(x1, 0), width - 1), min(max(y1, 0), height - 1))


def _edges(box: tuple[int, int, int, int], width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The four 1-pixel-wide sides of ``box`` (corners inclusive, clipped to the picture) as boxes."""
    x0, y0, x1, y1 = _clip(box, width, height)
    return [(x0, y0, x1 + 1, y0 + 1), (x0, y1, x1 + 1, y1 + 1), (x0, y0, x0 + 1, y1 + 1), (x1, y0, x1 + 1, y1 + 1)]


def draw_panel(image: np.ndarray, items: Sequence[Item], marks: Sequence[BoxMark] = (),
               arrows: Sequence[tuple[object, object]] = (), *, title: str = "", px: int | None = None) -> Panel:
    """Draw ``items`` (masks blended at 55%, outlines, labels), ``marks`` (dashed boxes) and ``arrows`` (from the
    item keyed by the first key to the one keyed by the second) on a copy of ``image``. Labels are placed by
    :func:`~hf_noisy.viz.placement.place_labels`: marks' and ``first`` items' labels first, then the rest by
    ascending area; none overlaps another, a mark's dashed outline or leaves the picture, a moved label (at
    most 3 label heights away) has a leader line, and a label with no room is left out (counted in ``hidden``).
    Text is ``px`` pixels (default: :func:`text_px`)."""
    height, width = image.shape[:2]
    px = px or text_px(height, width)
    font = load_font(px)
    thin, thick = max(1, px // 10), max(2, px // 5)
    out = image.copy()
    anchors: dict[object, tuple[int, int]] = {}
    wanted = []  # (priority, target box, text, text colour, swatch colour, anchor point)
    for item in items:
        region = item.mask.astype(bool)
        if not region.any():
            continue
        out[region] = (0.45 * out[region] + 0.55 * np.array(item.colour, float)).astype(np.uint8)
        contours, _ = cv2.findContours(item.mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        if item.crowd:
            for contour in contours:
                for start in range(0, len(contour), 8):
                    cv2.polylines(out, [contour[start : start + 4]], False, _WHITE, thin)
        if item.outline is not None:
            cv2.drawContours(out, contours, -1, item.outline, thick, cv2.LINE_AA)
        elif not item.crowd:
            cv2.drawContours(out, contours, -1, item.colour, thin, cv2.LINE_AA)
        box, point = _anchor(region)
        if item.key is not None:
            anchors[item.key] = point
        wanted.append(((0 if item.first else 1, int(region.sum())), box, item.label, _WHITE,
                       item.outline or item.colour, point))
    for start, end in arrows:
        if start in anchors and end in anchors:
            cv2.arrowedLine(out, anchors[start], anchors[end], (0, 0, 0), thick + 2, cv2.LINE_AA, tipLength=0.25)
            cv2.arrowedLine(out, anchors[start], anchors[end], _WHITE, thin, cv2.LINE_AA, tipLength=0.25)
    for mark in marks:
        x0, y0, x1, y1 = _clip(mark.box, width, height)
        _dashed_rectangle(out, (x0, y0, x1, y1), mark.colour, max(4, px // 2), thin)
        wanted.append(((0, 0), (x0, y0, x1 + 1, y1 + 1), mark.label, (150, 150, 255), mark.colour,
                       ((x0 + x1) // 2, (y0 + y1) // 2)))
    wanted.sort(key=lambda w: w[0])  # stable: equal priorities keep the caller's order
    texts = [fit_text(font, w[2], width) for w in wanted]
    sizes = [label_size(font, t) for t in texts]
    edges = [edge for mark in marks for edge in _edges(mark.box, width, height)]  # labels leave marks visible
    placements = place_labels([w[1] for w in wanted], sizes, (width, height), gap=max(1, px // 8),
                              reach=3 * (sizes[0][1] if sizes else px), taken=edges)
    labels = [Label(p.box, t, w[3], w[4], w[5] if p.leader else None)
              for w, t, p in zip(wanted, texts, placements) if p is not None]
    return Panel(draw_labels(out, labels, font), title, tuple(labels), sum(p is None for p in placements))


def _sample(strip: np.ndarray, entry: LegendEntry, x: int, y: int, size: int) -> None:
    box = (x, y, x + size - 1, y + size - 1)
    thick = max(2, size // 6)
    if entry.sample == "fill":
        strip[y : y + size, x : x + size] = entry.colour
    elif entry.sample == "outline":
        cv2.rectangle(strip, box[:2], box[2:], entry.colour, thick)
    elif entry.sample in ("dashed", "crowd"):
        _dashed_rectangle(strip, box, entry.colour, max(2, size // 4), max(1, size // 10))
    elif entry.sample == "arrow":
        cv2.arrowedLine(strip, (x, y + size - 1), (x + size - 1, y), entry.colour, max(1, size // 10), cv2.LINE_AA,
                        tipLength=0.4)


def _legend(entries: Sequence[LegendEntry], width: int, font: Font) -> np.ndarray:
    """The legend strip: entries flowing left to right in rows that wrap at ``width``."""
    ascent, descent = font.getmetrics()
    line = ascent + descent
    pad = max(3, line // 3)
    size = ascent
    placed, x, row = [], pad, 0
    for entry in entries:
        text = fit_text(font, entry.text, width - 2 * pad - size - pad)
        span = (size + pad if entry.sample != "none" else 0) + label_size(font, text)[0]
        if x > pad and x + span > width - pad:
            x, row = pad, row + 1
        placed.append((entry, text, x, row))
        x += span + 2 * pad
    rows = row + 1 if entries else 0
    strip = np.full((rows * (line + pad) + pad, width, 3), _STRIP, np.uint8)
    texts = []
    for entry, text, x, row in placed:
        y = pad + row * (line + pad)
        if entry.sample != "none":
            _sample(strip, entry, x, y + (line - size) // 2, size)
            x += size + pad
        texts.append((x, y, text))
    return _text(strip, texts, font)


def _text(picture: np.ndarray, texts: Sequence[tuple[int, int, str]], font: Font,
          colour: tuple[int, int, int] = _WHITE) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(picture[:, :, ::-1]))
    draw = ImageDraw.Draw(image)
    for x, y, text in texts:
        draw.text((x, y), text, font=font, fill=colour[::-1])
    return np.asarray(image)[:, :, ::-1].copy()


def title_height(px: int) -> int:
    """Height in pixels of the title strip :func:`compose` puts above the panels for text size ``px``."""
    ascent, descent = load_font(_title_px(px)).getmetrics()
    return ascent + descent + 2 * max(3, (ascent + descent) // 4)


def _title_px(px: int) -> int:
    return round(px * 1.15)


def compose(panels: Sequence[Panel], legend: Sequence[LegendEntry] = (), *, px: int | None = None) -> np.ndarray:
    """The panels side by side (6 white pixels apart), each under its title, above the legend strip (left out
    when ``legend`` is empty). All panels have the same height; text is ``px`` pixels (default: :func:`text_px`
    of the first panel)."""
    height = panels[0].picture.shape[0]
    px = px or text_px(height, panels[0].picture.shape[1])
    title_font = load_font(_title_px(px))
    columns = []
    for k, panel in enumerate(panels):
        width = panel.picture.shape[1]
        strip = np.full((title_height(px), width, 3), _STRIP, np.uint8)
        pad = (len(strip) - sum(title_font.getmetrics())) // 2
        strip = _text(strip, [(pad, pad, fit_text(title_font, panel.title, width - pad))], title_font)
        columns.append(np.vstack([strip, panel.picture]))
        if k < len(panels) - 1:
            columns.append(np.full((columns[-1].shape[0], _GAP, 3), 255, np.uint8))
    picture = np.hstack(columns)
    if legend:
        picture = np.vstack([picture, _legend(legend, picture.shape[1], load_font(px))])
    return picture
