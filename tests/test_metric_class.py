"""The streaming metric (hf_noisy.metrics.InstanceSegmentationAP) gives evaluate()'s numbers bit for bit on real
data, whatever the batches, their order and the processes; it keeps a stated number of bytes per detection, never
the masks; it refuses bad input at update, naming the field; and importing hf_noisy.metrics stays light."""

from __future__ import annotations

import json
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_noisy.coco import CocoFormatError, load_coco
from hf_noisy.metrics import (LVIS, InstanceSegmentationAP, MetricStateError, PredictionError, all_gather_object,
                              evaluate, evaluate_coco, evaluate_lvis, get_protocol)

REPO = Path(__file__).resolve().parents[1]


def per_image(gt: dict, detections: list[dict], lvis: bool = False) -> tuple[list[dict], list[dict]]:
    """The per-image dicts (RLE masks, COCO annotations) of a ground truth and its COCO results."""
    predictions, targets = [], []
    for image in gt["images"]:
        dets = [d for d in detections if d["image_id"] == image["id"]]
        prediction = {"masks": [d["segmentation"] for d in dets], "scores": [d["score"] for d in dets],
                      "labels": [d["category_id"] for d in dets]}
        if detections and "bbox" in detections[0]:
            prediction["boxes"] = [d["bbox"] for d in dets]
        predictions.append(prediction)
        target = {"image_id": image["id"], "height": image["height"], "width": image["width"],
                  "annotations": [a for a in gt["annotations"] if a["image_id"] == image["id"]]}
        if lvis:
            target.update({k: image[k] for k in ("neg_category_ids", "not_exhaustive_category_ids") if k in image})
        targets.append(target)
    return predictions, targets


def fed(metric: InstanceSegmentationAP, predictions: list, targets: list, seed: int) -> InstanceSegmentationAP:
    """``metric`` updated with the images in a random order, in random batch sizes (1 to 9 images)."""
    rng = random.Random(seed)
    order = list(range(len(predictions)))
    rng.shuffle(order)
    k = 0
    while k < len(order):
        batch = order[k:k + rng.randint(1, 9)]
        metric.update([predictions[i] for i in batch], [targets[i] for i in batch])
        k += len(batch)
    return metric


def assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for iou_type in want:
        g, w = got[iou_type], want[iou_type]
        assert g.rules == w.rules and g.category_ids == w.category_ids
        np.testing.assert_allclose(list(g.stats.values()), list(w.stats.values()), rtol=0, atol=1e-12)
        assert list(g.stats) == list(w.stats)
        np.testing.assert_allclose(g.precision, w.precision, rtol=0, atol=1e-12)
        np.testing.assert_allclose(g.recall, w.recall, rtol=0, atol=1e-12)
        assert g.per_category == pytest.approx(w.per_category, abs=1e-12)


@pytest.fixture(scope="module")
def coco_case(shared_dir):
    gt = load_coco(shared_dir / "data" / "coco-tiny" / "annotations" / "instances_val2017.json")
    detections = json.loads((shared_dir / "data" / "vectors" / "eval_val2017_detections.json").read_text())
    return gt, detections, evaluate_coco(gt, detections)


@pytest.fixture(scope="module")
def lvis_case(shared_dir):
    sys.path.insert(0, str(Path(__file__).parent))
    from lvis_reference import make_detections

    gt = load_coco(shared_dir / "data" / "lvis-tiny" / "lvis_val_100.json")
    detections = make_detections(gt)
    return gt, detections, evaluate_lvis(gt, detections)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_numbers_equal_evaluate_coco_on_any_batches(coco_case, seed):
    gt, detections, expected = coco_case
    predictions, targets = per_image(gt, detections)
    metric = fed(InstanceSegmentationAP(categories=gt["categories"]), predictions, targets, seed)
    assert metric.compute()["segm"].stats["AP"] > 0.3  # real predictions: a real score
    assert_same(metric.compute(), expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_lvis_numbers_equal_evaluate_lvis_on_any_batches(lvis_case, seed):
    gt, detections, expected = lvis_case
    predictions, targets = per_image(gt, detections, lvis=True)
    metric = fed(InstanceSegmentationAP(protocol="lvis", categories=gt["categories"]), predictions, targets, seed)
    assert metric.num_detections < len(detections)  # the federated rule dropped unlisted categories at update
    assert_same(metric.compute(), expected)
    assert expected["segm"].stats["APf"] > 0


def test_tensor_and_numpy_masks_give_the_numbers_of_their_rles(coco_case):
    """Masks as torch / numpy N x H x W stacks, targets as masks + labels + iscrowd + area: the numbers of
    evaluate_coco on the same masks as RLE (no boxes: mask areas, the masks' tight boxes)."""
    torch = pytest.importorskip("torch")
    from pycocotools import mask as mask_utils

    from hf_noisy.masks import segmentation_to_rle

    gt, detections, _ = coco_case
    detections = [{k: v for k, v in d.items() if k != "bbox"} for d in detections]
    expected = evaluate_coco({**gt, "annotations": [{k: v for k, v in a.items() if k != "bbox"}
                                                    for a in gt["annotations"]]}, detections)
    metric = InstanceSegmentationAP(categories=gt["categories"])
    for n, image in enumerate(gt["images"]):
        h, w = image["height"], image["width"]
        dets = [d for d in detections if d["image_id"] == image["id"]]
        anns = [a for a in gt["annotations"] if a["image_id"] == image["id"]]

        def stack(rles):
            return np.stack([mask_utils.decode(r) for r in rles]) if rles else np.zeros((0, h, w), np.uint8)

        pred_masks = stack([d["segmentation"] for d in dets])
        truth_masks = stack([segmentation_to_rle(a["segmentation"], h, w) for a in anns]).astype(bool)
        as_tensor = n % 2 == 0  # half the images as torch tensors, half as numpy arrays
        prediction = {"masks": torch.from_numpy(pred_masks) if as_tensor else pred_masks,
                      "scores": torch.tensor([d["score"] for d in dets], dtype=torch.float64),
                      "labels": torch.tensor([d["category_id"] for d in dets], dtype=torch.int64)}
        target = {"image_id": image["id"], "masks": torch.from_numpy(truth_masks) if as_tensor else truth_masks,
                  "labels": np.array([a["category_id"] for a in anns]),
                  "iscrowd": [a.get("iscrowd", 0) for a in anns], "area": [a["area"] for a in anns]}
        metric.update([prediction], [target])
    assert_same(metric.compute(), expected)


def test_merge_sync_and_state_round_trip(coco_case):
    """Two "ranks" holding alternate images, merged (also through pickled states, as a gather sends them), give
    the single-process numbers; images given twice are refused."""
    gt, detections, expected = coco_case
    predictions, targets = per_image(gt, detections)
    ranks = [fed(InstanceSegmentationAP(categories=gt["categories"]), predictions[r::2], targets[r::2], seed=r)
             for r in range(2)]
    merged = InstanceSegmentationAP(categories=gt["categories"]).merge(ranks[1]).merge(ranks[0])
    assert_same(merged.compute(), expected)

    def gather(items):  # what accelerate's gather_object returns on each rank: every rank's list, joined
        return [pickle.loads(pickle.dumps(state)) for metric in ranks for state in [metric.state_dict()]]

    assert all_gather_object(["one rank"]) == ["one rank"]  # torch.distributed not initialised: this rank's own
    synced = ranks[0].sync(gather)
    assert synced is ranks[0] and synced.num_images == len(gt["images"])
    assert_same(synced.compute(), expected)
    with pytest.raises(MetricStateError, match="added twice"):
        synced.merge(ranks[1])
    with pytest.raises(MetricStateError, match="settings"):
        InstanceSegmentationAP(["segm"]).merge(ranks[1])


def test_num_proc_shards_give_the_same_state(coco_case):
    """One update of the whole dataset on 3 worker processes holds the state of one process, array for array."""
    gt, detections, expected = coco_case
    predictions, targets = per_image(gt, detections)
    one, three = InstanceSegmentationAP(), InstanceSegmentationAP()
    one.update(predictions, targets)
    three.update(predictions, targets, num_proc=3)
    for name, array in one.state_dict()["arrays"].items():
        np.testing.assert_array_equal(three.state_dict()["arrays"][name], array, err_msg=name)
    assert three.compute()["segm"].stats == expected["segm"].stats
    with pytest.raises(MetricStateError, match="added twice"):
        three.update(predictions[:4], targets[:4], num_proc=2)


def test_auto_numbered_images_merge_in_rank_order(coco_case):
    """Targets without image_id: images are numbered by arrival, and a merged metric numbers the other's after
    its own, so two halves merged in order give the numbers of the whole in order."""
    gt, detections, _ = coco_case
    predictions, targets = per_image(gt, detections)
    targets = [{k: v for k, v in t.items() if k != "image_id"} for t in targets]
    whole = InstanceSegmentationAP(["segm"])
    whole.update(predictions, targets)
    half = len(predictions) // 2
    first, second = InstanceSegmentationAP(["segm"]), InstanceSegmentationAP(["segm"])
    first.update(predictions[:half], targets[:half])
    second.update(predictions[half:], targets[half:])
    assert_same(first.merge(second).compute(), whole.compute())
    with pytest.raises(MetricStateError, match="image_id"):
        first.update(predictions[:1], [{**targets[0], "image_id": 10**9}])


def test_memory_is_the_stated_bytes_per_detection(coco_case):
    """The state is 28 + 40 per IoU type bytes per kept detection, 8 per image and 40 per (image, category with
    ground truth), read from the arrays' nbytes; no mask is kept."""
    gt, detections, _ = coco_case
    predictions, targets = per_image(gt, detections)
    for iou_types, per_detection in ((("segm", "bbox", "boundary"), 148), (("segm", "boundary"), 108)):
        metric = fed(InstanceSegmentationAP(iou_types), predictions, targets, seed=3)
        assert metric.bytes_per_detection == per_detection
        truth_rows = len({(a["image_id"], a["category_id"]) for a in gt["annotations"]})
        assert metric.num_detections == len(detections)
        assert metric.state_nbytes() == (per_detection * len(detections) + 8 * len(gt["images"])
                                         + 40 * truth_rows)
        state = metric.state_dict()["arrays"]
        assert all(array.dtype != object and array.ndim <= 3 for array in state.values())
        rle_bytes = sum(len(d["segmentation"]["counts"]) for d in detections)
        assert metric.state_nbytes() < rle_bytes  # smaller than the masks, even compressed
    metric.reset()
    assert metric.num_detections == 0 and metric.state_nbytes() == 0


def _image(height=20, width=30, n=2):
    masks = np.zeros((n, height, width), bool)
    for k in range(n):
        masks[k, 2 + k:8 + k, 3:12] = True
    prediction = {"masks": masks, "scores": [0.9, 0.4][:n], "labels": [1, 2][:n]}
    target = {"masks": masks, "labels": [1, 2][:n]}
    return prediction, target


@pytest.mark.parametrize("change, error, message", [
    (lambda p, t: p.update(scores=[0.9, float("nan")]), PredictionError, "field 'scores': element 1"),
    (lambda p, t: p.update(labels=[1.0, 2]), PredictionError, "field 'labels': element 0"),
    (lambda p, t: p.update(scores=[0.9]), PredictionError, "same length"),
    (lambda p, t: p.update(masks=np.zeros((2, 5), bool)), PredictionError, "field 'masks'.*N x H x W"),
    (lambda p, t: p.update(masks=np.full((2, 20, 30), 3, np.uint8)), PredictionError, "field 'masks'.*0/1"),
    (lambda p, t: p.update(masks=[{"size": [9, 9], "counts": "PX"}] * 2), PredictionError, "segmentation"),
    (lambda p, t: p.update(image_size=[1, 1]), PredictionError, "image_size"),
    (lambda p, t: p.pop("scores"), PredictionError, "field 'scores' missing"),
    (lambda p, t: t.pop("labels"), CocoFormatError, "field 'labels' missing"),
    (lambda p, t: t.update(iscrowd=[0, 2]), CocoFormatError, "iscrowd"),
    (lambda p, t: t.update(area=[1.0]), CocoFormatError, "field 'area'"),
])
def test_bad_input_fails_at_update_naming_the_field(change, error, message):
    metric = InstanceSegmentationAP()
    good_prediction, good_target = _image()
    metric.update([good_prediction], [good_target])
    prediction, target = _image()
    change(prediction, target)
    with pytest.raises(error, match=message):
        metric.update([_image()[0], prediction], [_image()[1], target])
    assert metric.num_images == 1 and metric.num_detections == 2  # nothing of the bad batch was kept
    assert issubclass(error, __import__("hf_noisy.errors", fromlist=["HfNoisyError"]).HfNoisyError)


def test_rle_targets_carry_their_size():
    """Targets as RLE lists need no height and width: the RLEs carry the image size."""
    from pycocotools import mask as mask_utils

    prediction, target = _image()
    rles = [{"size": r["size"], "counts": r["counts"].decode()}
            for r in mask_utils.encode(np.asfortranarray(target["masks"].transpose(1, 2, 0).astype(np.uint8)))]
    metric = InstanceSegmentationAP(["segm"])
    metric.update(prediction, {"masks": rles, "labels": target["labels"]})
    assert metric.compute()["segm"].stats["AP"] == pytest.approx(1.0)  # the ground truth as predictions


def test_unknown_category_and_bad_settings():
    prediction, target = _image()
    with pytest.raises(CocoFormatError, match="field 'image_id'"):
        InstanceSegmentationAP().update(prediction, {**target, "image_id": "7"})
    with pytest.raises(PredictionError, match="unknown category id 2"):
        InstanceSegmentationAP(categories=[{"id": 1}]).update(prediction, target)
    with pytest.raises(Exception, match="IoU type"):
        InstanceSegmentationAP(["mask"])
    with pytest.raises(Exception, match="protocol"):
        InstanceSegmentationAP(protocol="voc")
    with pytest.raises(Exception, match="max_dets"):
        InstanceSegmentationAP(max_dets=5)


def test_the_protocol_decides_the_detections_per_image():
    assert get_protocol("lvis").max_detections == 300 and get_protocol("COCO").max_detections == 100
    assert get_protocol("lvis") is LVIS and LVIS.detection_limits() == (300,)
    assert get_protocol("coco").detection_limits(50) == (1, 10, 50)


def test_evaluate_auto_picks_the_protocol(coco_case, lvis_case):
    gt, detections, expected = coco_case
    assert_same(evaluate(gt, detections), expected)
    gt, detections, expected = lvis_case
    assert_same(evaluate(gt, detections, iou_types=("segm", "bbox", "boundary")), expected)
    assert evaluate(gt, detections, "coco", ["segm"])["segm"].rules == "coco"


def test_importing_metrics_loads_no_torch_hub_or_leaderboard():
    code = ("import sys, hf_noisy.metrics; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'gradio', 'datasets')"
            " or m.startswith(('hf_noisy.hub', 'hf_noisy.leaderboard', 'hf_noisy.train'))); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout


_TWO_RANKS = """
import json, sys
from accelerate import Accelerator
from accelerate.utils import gather_object
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/.."]  # the tests, and the checkout they test
from lvis_reference import make_detections
from test_metric_class import fed, per_image
from hf_noisy.coco import load_coco
from hf_noisy.metrics import InstanceSegmentationAP

accelerator = Accelerator(cpu=True)
rank, world = accelerator.process_index, accelerator.num_processes
coco, lvis = load_coco(sys.argv[2]), load_coco(sys.argv[4])
out = {"world": world}
for name, gt, detections in (("coco", coco, json.loads(open(sys.argv[3]).read())),
                             ("lvis", lvis, make_detections(lvis))):
    predictions, targets = per_image(gt, detections, lvis=name == "lvis")
    metric = InstanceSegmentationAP(protocol=name, categories=gt["categories"])
    fed(metric, predictions[rank::world], targets[rank::world], seed=rank)  # each rank its share, its own batches
    metric.sync(gather_object)
    out[name] = {"images": metric.num_images, "stats": {t: e.stats for t, e in metric.compute().items()}}
with open(f"{sys.argv[5]}/rank{rank}.json", "w") as f:
    json.dump(out, f)
"""


@pytest.mark.slow
def test_two_processes_under_accelerate_launch(coco_case, lvis_case, shared_dir, tmp_path, two_cpu_processes):
    """Two real gloo ranks (accelerate launch), each updating with half the images in its own random batches,
    synced with accelerate's gather_object: on both ranks the numbers of evaluate_coco / evaluate_lvis on all
    images."""
    script = tmp_path / "two_ranks.py"
    script.write_text(_TWO_RANKS)
    data = shared_dir / "data"
    run = subprocess.run([*two_cpu_processes(), str(script), str(Path(__file__).parent),
                          str(data / "coco-tiny" / "annotations" / "instances_val2017.json"),
                          str(data / "vectors" / "eval_val2017_detections.json"),
                          str(data / "lvis-tiny" / "lvis_val_100.json"), str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    for rank in range(2):
        out = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert out["world"] == 2
        for name, (gt, _, expected) in (("coco", coco_case), ("lvis", lvis_case)):
            assert out[name]["images"] == len(gt["images"])
            for iou_type, evaluation in expected.items():
                assert list(out[name]["stats"][iou_type]) == list(evaluation.stats)
                np.testing.assert_allclose(list(out[name]["stats"][iou_type].values()),
                                           list(evaluation.stats.values()), rtol=0, atol=1e-12)
