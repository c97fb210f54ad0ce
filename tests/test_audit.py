"""hf_noisy.audit and ``hf-noisy audit``: schema, determinism, and the errors it must find on constructed data."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hf_noisy.audit import SUSPECTS, AuditConfig, AuditError, audit_coco
from hf_noisy.cli import main
from hf_noisy.masks import encode
from hf_noisy.viz.panel import title_height
from hf_noisy.viz.text import text_px

H, W = 240, 320
CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "bird"}]


def _disc(cx: int, cy: int, r: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, (cx, cy), r, 1, -1)
    return mask


def _scene(n_images: int = 4) -> tuple[dict, list[dict], dict[int, np.ndarray]]:
    """Clean annotations (three discs per image) and predictions equal to them (score 0.9)."""
    images, anns, preds, masks = [], [], [], {}
    for image_id in range(1, n_images + 1):
        images.append({"id": image_id, "height": H, "width": W, "file_name": f"{image_id}.jpg"})
        for k, (cx, cy, r) in enumerate(((70, 80, 40), (200, 90, 35), (160, 190, 30))):
            ann_id = image_id * 10 + k
            masks[ann_id] = _disc(cx, cy, r)
            rle = encode(masks[ann_id])
            category = 1 + (k + image_id) % 3
            anns.append({"id": ann_id, "image_id": image_id, "category_id": category, "segmentation": rle,
                         "area": float(masks[ann_id].sum()), "bbox": [cx - r, cy - r, 2 * r, 2 * r], "iscrowd": 0})
            preds.append({"image_id": image_id, "category_id": category, "segmentation": rle, "score": 0.9})
    return {"images": images, "annotations": anns, "categories": CATEGORIES}, preds, masks


def _row(audit: dict, ann_id: int) -> dict:
    return next(r for r in audit["annotations"] if r["id"] == ann_id)


def test_output_schema_and_cli(tmp_path):
    gt, preds, _ = _scene()
    (tmp_path / "ann.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(preds[1:]))  # one annotation left without a prediction
    out = tmp_path / "audit.json"
    (tmp_path / "no-images").mkdir()  # the synthetic scene has no image files: drawn on grey
    code = main(["audit", "--annotations", str(tmp_path / "ann.json"), "--predictions", str(tmp_path / "res.json"),
                 "-o", str(out), "--images", str(tmp_path / "no-images"), "--top", "3"])
    assert code == 0
    audit = json.loads(out.read_text())
    assert set(audit) == {"annotations", "missing", "estimated", "info"}
    assert sorted(r["id"] for r in audit["annotations"]) == sorted(a["id"] for a in gt["annotations"])
    keys = {"id", "image_id", "category_id", "score", "suspected", "matched_iou", "boundary_iou",
            "suggested_category_id", "reason", "op", "prediction", "scores"}
    for row in audit["annotations"]:
        assert set(row) == keys
        assert 0.0 <= row["score"] <= 1.0 and row["suspected"] in SUSPECTS and isinstance(row["reason"], str)
        assert row["score"] == max(row["scores"].values())
    scores = [r["score"] for r in audit["annotations"]]
    assert scores == sorted(scores, reverse=True)
    for key in ("class_flip", "dilate", "erode", "localization", "approximation", "spurious", "missing"):
        assert key in audit["estimated"]
    assert audit["info"]["annotations_sha256"] and audit["info"]["predictions"] == len(preds) - 1
    # cross-fitted folds: several prediction files are one list, whatever way the detections are split
    (tmp_path / "fold0.json").write_text(json.dumps(preds[1:3]))
    (tmp_path / "fold1.json").write_text(json.dumps(preds[3:]))
    assert main(["audit", "--annotations", str(tmp_path / "ann.json"), "--predictions", str(tmp_path / "fold0.json"),
                 str(tmp_path / "fold1.json"), "-o", str(tmp_path / "folds.json")]) == 0
    folds = json.loads((tmp_path / "folds.json").read_text())
    assert folds["annotations"] == audit["annotations"] and folds["estimated"] == audit["estimated"]
    assert len(folds["info"]["predictions_files"]) == 2 == len(folds["info"]["predictions_sha256"])
    overlays = sorted((tmp_path / "audit_overlays").iterdir())
    assert [p.name for p in overlays] == ["001_ann10.png"]  # the one flagged annotation (spurious)
    picture = cv2.imread(str(overlays[0]))  # two halves, cut around the disc and scaled up, under their titles
    width = picture.shape[1]
    assert (width - 6) % 2 == 0
    gap = picture[:, (width - 6) // 2 : (width - 6) // 2 + 6]  # white between the panels, title strip included
    height = int((gap == 255).all(axis=(1, 2)).sum()) - title_height(text_px(480, (width - 6) // 2))
    assert max(height, (width - 6) // 2) == 480


def test_deterministic_whatever_the_order(tmp_path):
    gt, preds, masks = _scene()
    eroded = cv2.erode(masks[21], np.ones((9, 9), np.uint8))
    gt["annotations"][3]["segmentation"] = encode(eroded)
    first = audit_coco(gt, preds)
    assert audit_coco(gt, preds) == first
    shuffled = {**gt, "annotations": gt["annotations"][::-1], "images": gt["images"][::-1]}
    again = audit_coco(shuffled, preds)
    assert [(r["id"], r["score"], r["suspected"]) for r in again["annotations"]] == \
        [(r["id"], r["score"], r["suspected"]) for r in first["annotations"]]
    files = []
    for run in range(2):
        (tmp_path / "ann.json").write_text(json.dumps(gt))
        (tmp_path / "res.json").write_text(json.dumps(preds))
        assert main(["audit", "--annotations", str(tmp_path / "ann.json"), "--predictions",
                     str(tmp_path / "res.json"), "-o", str(tmp_path / f"a{run}.json")]) == 0
        files.append((tmp_path / f"a{run}.json").read_bytes())
    assert files[0] == files[1]


def test_eroded_annotation_scores_higher_than_one_equal_to_its_prediction():
    gt, preds, masks = _scene()
    clean = _row(audit_coco(gt, preds), 21)
    assert clean["matched_iou"] == 1.0 and clean["suspected"] == "none"
    eroded = cv2.erode(masks[21], np.ones((15, 15), np.uint8))  # 7 px on every side
    noisy_gt = {**gt, "annotations": [dict(a, segmentation=encode(eroded)) if a["id"] == 21 else a
                                      for a in gt["annotations"]]}
    noisy = _row(audit_coco(noisy_gt, preds), 21)
    assert noisy["score"] > clean["score"] + 0.3
    assert noisy["suspected"] == "mask" and noisy["op"] == "erode"
    assert noisy["matched_iou"] < 0.8 and noisy["boundary_iou"] < noisy["matched_iou"]


def test_flipped_class_is_flagged_with_the_right_suggestion():
    gt, preds, _ = _scene()
    ann = gt["annotations"][4]
    true_class = ann["category_id"]
    wrong = 1 + true_class % 3
    flipped = {**gt, "annotations": [dict(a, category_id=wrong) if a is ann else a for a in gt["annotations"]]}
    audit = audit_coco(flipped, preds)
    row = audit["annotations"][0]
    assert row["id"] == ann["id"] and row["suspected"] == "class"
    assert row["suggested_category_id"] == true_class and row["score"] == pytest.approx(0.9)
    assert audit["estimated"]["suspected"]["class"] == 1
    assert all(r["suspected"] == "none" for r in audit["annotations"][1:])


def test_missing_and_spurious_on_a_constructed_image():
    gt, preds, _ = _scene()
    # image 2: a bird that nobody annotated, and an annotation over empty background that no prediction sees
    extra = encode(_disc(280, 200, 20))
    preds.append({"image_id": 2, "category_id": 3, "segmentation": extra, "score": 0.8})
    preds.append({"image_id": 2, "category_id": 3, "segmentation": extra, "score": 0.3})  # a weaker duplicate
    ghost = _disc(30, 210, 18)
    gt["annotations"].append({"id": 99, "image_id": 2, "category_id": 1, "segmentation": encode(ghost),
                              "area": float(ghost.sum()), "bbox": [12, 192, 36, 36], "iscrowd": 0})
    audit = audit_coco(gt, preds)
    assert [(m["image_id"], m["category_id"], m["score"]) for m in audit["missing"]] == [(2, 3, 0.8)]
    assert audit["missing"][0]["segmentation"]["counts"] == extra["counts"]
    row = audit["annotations"][0]
    assert row["id"] == 99 and row["suspected"] == "spurious" and row["matched_iou"] is None
    assert all(r["suspected"] == "none" for r in audit["annotations"][1:])


def test_existing_outputs_inputs_and_absent_image_folders_are_refused(tmp_path, capsys):
    gt, preds, _ = _scene()
    ann, res, out = tmp_path / "ann.json", tmp_path / "res.json", tmp_path / "audit.json"
    ann.write_text(json.dumps(gt))
    res.write_text(json.dumps(preds))
    args = ["audit", "--annotations", str(ann), "--predictions", str(res)]
    out.write_text("keep me")
    assert main([*args, "-o", str(out)]) == 2 and "--overwrite" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main([*args, "-o", str(ann), "--overwrite"]) == 2 and "is the input" in capsys.readouterr().err
    assert json.loads(ann.read_text()) == gt
    assert main([*args, "-o", str(out), "--overwrite", "--images", str(tmp_path / "absent")]) == 2
    assert f"image folder {tmp_path / 'absent'}: no such folder" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    from hf_noisy.audit import audit_files

    with pytest.raises(FileExistsError, match=r"audit.json already exists \(pass overwrite=True to replace it\)"):
        audit_files(ann, res, out)  # the Python API names its keyword
    assert main([*args, "-o", str(out), "--overwrite"]) == 0 and "annotations" in json.loads(out.read_text())


def test_bad_predictions_give_one_error_line_and_write_nothing(tmp_path, capsys):
    gt, preds, _ = _scene()
    preds[2]["image_id"] = 777
    (tmp_path / "ann.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(preds))
    out = tmp_path / "audit.json"
    code = main(["audit", "--annotations", str(tmp_path / "ann.json"), "--predictions", str(tmp_path / "res.json"),
                 "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "res.json" in err[0] and "detection #2" in err[0] and "image_id" in err[0]
    assert not out.exists()
    with pytest.raises(AuditError, match="class_iou"):
        AuditConfig(class_iou=1.5)


def _auroc(scores: list[float], positive: list[bool]) -> float:
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    return sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))


def test_finds_coco_n_hard_noise_on_real_coco_tiny(coco_tiny):
    """Real polygons, crowd regions and emptied masks: with the clean masks and labels as the predictions,
    the audit ranks COCO-N hard's flipped and spatially noised annotations above the untouched ones."""
    from hf_noisy.coco import load_coco
    from hf_noisy.masks import segmentation_to_rle
    from hf_noisy.noise import PRESETS, apply_noise

    clean = load_coco(coco_tiny / "annotations" / "instances_val2017.json")
    sizes = {i["id"]: (i["height"], i["width"]) for i in clean["images"]}
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
              "segmentation": segmentation_to_rle(a["segmentation"], *sizes[a["image_id"]])}
             for a in clean["annotations"] if not a["iscrowd"]]
    noisy = apply_noise(clean, PRESETS["hard"], allow_empty_masks=True).data
    rows = {r["id"]: r for r in audit_coco(noisy, preds)["annotations"]}
    anns = [a for a in noisy["annotations"] if not a["iscrowd"]]
    untouched = [not a["class_flipped"] and a["noise_op"] == "none" for a in anns]
    flips = [a for a, u in zip(anns, untouched) if a["class_flipped"] or u]
    assert _auroc([rows[a["id"]]["scores"]["class"] for a in flips], [a["class_flipped"] for a in flips]) > 0.95
    flagged = [rows[a["id"]] for a in anns if a["class_flipped"]]
    right = sum(r["suggested_category_id"] == a["original_category_id"] for r, a in
                zip(flagged, [a for a in anns if a["class_flipped"]]))
    assert right >= 0.9 * len(flagged)
    spatial = [a for a, u in zip(anns, untouched) if not a["class_flipped"]]
    assert _auroc([rows[a["id"]]["score"] for a in spatial], [a["noise_op"] != "none" for a in spatial]) > 0.75


def test_overlays_are_numbered_by_their_audit_rank_and_an_empty_mask_keeps_its_number(tmp_path):
    """An emptied mask (top score) is drawn under its rank with a note, not skipped: overlay #k is row k."""
    from hf_noisy.audit import render_audit_overlays

    gt, preds, masks = _scene()
    gt["annotations"][0]["segmentation"] = encode(np.zeros((H, W), np.uint8))  # emptied, bbox kept
    gt["annotations"][4]["segmentation"] = encode(cv2.erode(masks[21], np.ones((15, 15), np.uint8)))
    gt["annotations"][7]["category_id"] = 1 + gt["annotations"][7]["category_id"] % 3  # a flipped class
    audit = audit_coco(gt, preds)
    rank = {row["id"]: k for k, row in enumerate(audit["annotations"], 1)}
    flagged = [row["id"] for row in audit["annotations"] if row["suspected"] != "none"]
    assert rank[gt["annotations"][0]["id"]] == 1 and len(flagged) >= 3  # the empty mask scores 1: row 1
    (tmp_path / "images").mkdir()
    written = render_audit_overlays(audit, gt, preds, tmp_path / "images", tmp_path / "ov", top=len(flagged))
    assert [p.name for p in written] == [f"{rank[i]:03d}_ann{i}.png" for i in flagged]
    assert [int(p.name[:3]) for p in written] == list(range(1, len(flagged) + 1))  # 001, 002, ...: no gap
    empty = cv2.imread(str(written[0]))
    # drawn from its bbox: the dashed box's red on the left panel (below the title strip)
    half = (empty.shape[1] - 6) // 2
    top = title_height(text_px(480, half))
    assert (empty[top:, :half] == (40, 40, 230)).all(axis=2).sum() > 20
    again = render_audit_overlays(audit, gt, preds, tmp_path / "images", tmp_path / "ov2", top=len(flagged))
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written]  # byte-identical
