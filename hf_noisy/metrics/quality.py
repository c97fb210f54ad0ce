"""Annotation quality: noisy annotations scored against the clean ones they were made from.

Two views, as in "Benchmarking Label Noise in Instance Segmentation":

* **AP** — the noisy annotations as detections (score 1.0, area = mask area) against the clean file as ground
  truth: mask AP (``segm``) and Boundary AP.
* **Mean IoU** — each noisy annotation paired with the clean annotation of the same ``id``: mean mask IoU and
  mean boundary IoU (boundary as in :mod:`hf_noisy.metrics.boundary`), whatever the categories.

Both are reported for all annotations (group ``"all"``) and, when the noisy file records the op that made each
annotation in ``noise_op`` (``"none"``, ``"dilate"``, ``"erode"``, ...), per op. The AP of one op is computed
against the clean annotations paired with that op's annotations (plus every crowd region), so that other
ops' instances do not count as misses. ``class_flipped`` (bool), when present, is counted per group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import HfNoisyError
from .boundary import DEFAULT_DILATION_RATIO, boundary_rle

__all__ = ["GroupQuality", "QualityReport", "QualityError", "score_quality"]


class QualityError(HfNoisyError):
    """A noisy file that does not fit its clean file (other images, sizes or categories)."""


@dataclass(frozen=True)
class GroupQuality:
    """Scores of one group of noisy annotations. AP values are pycocotools' (``-1.0`` where undefined);
    mean IoUs are ``None`` when no annotation of the group pairs with a clean one."""

    annotations: int
    paired: int
    class_flipped: int
    mask_AP: float
    boundary_AP: float
    mean_mask_iou: float | None
    mean_boundary_iou: float | None


@dataclass(frozen=True)
class QualityReport:
    """``groups``: ``"all"`` first, then one entry per ``noise_op`` value (sorted) when the file records it."""

    groups: dict[str, GroupQuality]
    dilation_ratio: float

    def to_dict(self) -> dict[str, Any]:
        return {"dilation_ratio": self.dilation_ratio, "groups": {k: asdict(v) for k, v in self.groups.items()}}


def _check_compatible(clean: dict, noisy: dict) -> None:
    sizes = {image["id"]: (image["height"], image["width"]) for image in clean["images"]}
    for image in noisy["images"]:
        if sizes.get(image["id"]) != (image["height"], image["width"]):
            raise QualityError(f"noisy image {image['id']} is not in the clean file with the same size")
    categories = {category["id"] for category in clean["categories"]}
    unknown = sorted({category["id"] for category in noisy["categories"]} - categories)
    if unknown:
        raise QualityError(f"noisy categories {unknown} are not in the clean file")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score_quality(clean: dict, noisy: dict, *, dilation_ratio: float = DEFAULT_DILATION_RATIO,
                  progress: bool = False) -> QualityReport:
    """Score ``noisy`` against ``clean`` (both validated COCO dicts over the same images); see the module docstring.
    ``progress``: progress bars on stderr, of the noisy annotations paired, then of the images scored for the AP
    of each group (every group scores every image)."""
    from ..masks import mask_iou, segmentation_to_rle
    from ..progress import progress_bar
    from .driver import evaluate
    from .protocol import COCO

    _check_compatible(clean, noisy)
    sizes = {image["id"]: (image["height"], image["width"]) for image in clean["images"]}
    clean_by_id = {ann["id"]: ann for ann in clean["annotations"]}
    crowd = [ann for ann in clean["annotations"] if ann.get("iscrowd", 0)]

    def rle_of(ann: dict) -> dict:
        return segmentation_to_rle(ann["segmentation"], *sizes[ann["image_id"]])

    groups: dict[str, list[dict]] = {"all": noisy["annotations"]}
    if any("noise_op" in ann for ann in noisy["annotations"]):
        ops = sorted({str(ann.get("noise_op", "none")) for ann in noisy["annotations"]})
        for op in ops:
            groups[op] = [ann for ann in noisy["annotations"] if str(ann.get("noise_op", "none")) == op]

    ious: dict[int, tuple[float, float]] = {}
    with progress_bar(progress, total=len(noisy["annotations"]), desc="pairing", unit="ann") as bar:
        for ann in noisy["annotations"]:
            bar.update(1)
            match = clean_by_id.get(ann["id"])
            if match is None or match.get("iscrowd", 0) or match["image_id"] != ann["image_id"]:
                continue
            noisy_rle, clean_rle = rle_of(ann), rle_of(match)
            ious[ann["id"]] = (
                mask_iou(noisy_rle, clean_rle),
                mask_iou(boundary_rle(noisy_rle, dilation_ratio), boundary_rle(clean_rle, dilation_ratio)),
            )

    report = {}
    with progress_bar(progress, total=len(groups) * len(clean["images"]), desc="AP per group", unit="img") as bar:
        for name, anns in groups.items():
            bar.set_postfix_str(name)
            predictions = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": rle_of(a),
                            "score": 1.0} for a in anns]
            if name == "all":
                gt = clean
            else:
                ids = {a["id"] for a in anns}
                kept = [c for c in clean["annotations"] if c["id"] in ids and not c.get("iscrowd", 0)]
                gt = {**clean, "annotations": kept + crowd}
            results = evaluate(gt, predictions, COCO, ("segm", "boundary"), dilation_ratio=dilation_ratio,
                               on_images=bar.update)
            paired = [ious[a["id"]] for a in anns if a["id"] in ious]
            report[name] = GroupQuality(
                annotations=len(anns),
                paired=len(paired),
                class_flipped=sum(bool(a.get("class_flipped", False)) for a in anns),
                mask_AP=results["segm"].stats["AP"],
                boundary_AP=results["boundary"].stats["AP"],
                mean_mask_iou=_mean([p[0] for p in paired]),
                mean_boundary_iou=_mean([p[1] for p in paired]),
            )
    return QualityReport(report, dilation_ratio)
