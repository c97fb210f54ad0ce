"""One figure of the annotation-error ops (issue 26): each op alone on the same coco-tiny val image, the clean
annotations first, then one noisy panel per op, as ``hf-noisy show`` draws them.

    PYTHONPATH=. python benchmarks/noise_ops_figure.py [--image-id 360960] [-o benchmarks/results/noise_ops/noise_ops.jpg]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np

from hf_noisy.cli import add_option
from hf_noisy.noise import NoiseSpec, apply_noise
from hf_noisy.viz import render_pair

SHARED = Path(os.environ.get("HF_NOISY_SHARED", Path(__file__).resolve().parents[2] / "shared"))
OPS = [("missing", {}), ("duplicate", {"max_offset": 0.3}), ("merge", {}), ("split", {}), ("box", {}),
       ("shift", {"max_offset": 0.3}), ("vertex_dropout", {"fraction": 0.7}), ("crowd_flip", {})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-id", type=int, default=360960)
    parser.add_argument("--prob", type=float, default=0.5)
    add_option(parser, "-o", "--out", aliases=("--output",), default="benchmarks/results/noise_ops/noise_ops.jpg")
    args = parser.parse_args()
    root = SHARED / "data" / "coco-tiny"
    data = json.loads((root / "annotations/instances_val2017.json").read_text())
    image = next(i for i in data["images"] if i["id"] == args.image_id)
    clean = [ann for ann in data["annotations"] if ann["image_id"] == args.image_id]
    subset = dict(data, images=[image], annotations=clean)
    picture = cv2.imread(str(root / "val2017" / image["file_name"]))
    names = {c["id"]: c["name"] for c in data["categories"]}
    width = picture.shape[1]
    panels = [render_pair(picture, clean, clean, names, "clean", legend=False, min_side=1)[:, :width]]
    for op, params in OPS:
        spec = NoiseSpec.from_dict({"seed": 1, "spatial": [{"op": op, "prob": args.prob, **params}]})
        noisy = apply_noise(subset, spec).data["annotations"]
        title = f"{op} (p={args.prob:g}{''.join(f', {k}={v:g}' for k, v in params.items())})"
        panels.append(render_pair(picture, clean, noisy, names, title, mark_removed=True, legend=False,
                                  min_side=1)[:, width + 6 :])
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    rows = [np.hstack([panels[i], gap, panels[i + 1], gap, panels[i + 2]]) for i in range(0, 9, 3)]
    sheet = np.vstack([np.vstack([row, np.full((6, row.shape[1], 3), 255, np.uint8)]) for row in rows])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, sheet, [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(args.out)


if __name__ == "__main__":
    main()
