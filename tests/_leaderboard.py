"""Shared helpers of the leaderboard tests: a small real ground truth (coco-tiny val) and predictions made
from it deterministically (shifted ground-truth masks with seeded scores), so AP is known to be non-zero."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hf_noisy.coco import load_coco, write_coco
from hf_noisy.masks import decode, encode, segmentation_to_rle


def small_gt(coco_tiny: Path, n_images: int = 20) -> dict:
    """The first ``n_images`` of coco-tiny val with their annotations and every category."""
    gt = load_coco(coco_tiny / "annotations" / "instances_val2017.json", allow_empty_masks=True)
    images = gt["images"][:n_images]
    keep = {image["id"] for image in images}
    return {"images": images, "categories": gt["categories"],
            "annotations": [a for a in gt["annotations"] if a["image_id"] in keep]}


def predictions(gt: dict, *, seed: int = 0, shift: int = 3, limit: int | None = None) -> list[dict]:
    """Every non-crowd ground-truth mask shifted by up to ``shift`` pixels, with a seeded score in (0, 1]."""
    rng = np.random.default_rng(seed)
    sizes = {image["id"]: (image["height"], image["width"]) for image in gt["images"]}
    out = []
    for ann in gt["annotations"]:
        if ann.get("iscrowd"):
            continue
        mask = decode(segmentation_to_rle(ann["segmentation"], *sizes[ann["image_id"]]))
        mask = np.roll(mask, int(rng.integers(-shift, shift + 1)), axis=1)
        out.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "segmentation": encode(mask),
                    "score": round(float(rng.uniform(0.05, 1.0)), 4)})
        if limit is not None and len(out) == limit:
            break
    return out


def write_gt(gt: dict, path: Path) -> Path:
    write_coco(gt, path)
    return path


def dumps(results: list) -> bytes:
    return json.dumps(results).encode("utf-8")


def shapes_gt(root: Path, num_val: int = 6) -> dict:
    """The validation split of the built-in shapes dataset (no ``../shared`` needed)."""
    from hf_noisy.synthetic import make_shapes_coco

    return load_coco(make_shapes_coco(root, num_train=1, num_val=num_val) / "annotations" / "instances_val2017.json",
                     allow_empty_masks=True)


def session_cookie(secret: str, username: str) -> str:
    """A starlette session cookie holding gradio's OAuth info for ``username``: what the Space's OAuth callback
    stores after a sign-in with Hugging Face (gradio signs the session with sha256(OAUTH_CLIENT_SECRET + "-v4"))."""
    import base64
    import hashlib
    import time

    from itsdangerous import TimestampSigner

    info = {"access_token": "test-oauth-token", "token_type": "bearer", "scope": "openid profile",
            "expires_at": int(time.time()) + 3600,
            "userinfo": {"sub": "1", "name": username.title(), "preferred_username": username,
                         "profile": f"https://huggingface.co/{username}", "picture": ""}}
    data = base64.b64encode(json.dumps({"oauth_info": info}).encode("utf-8"))
    return TimestampSigner(hashlib.sha256(f"{secret}-v4".encode()).hexdigest()).sign(data).decode("utf-8")
