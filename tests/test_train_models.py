"""hf_noisy.models directly (the library the training script is written on): importable without torch, the config
schema's errors name the field, Mask2Former post-processing on a tiny random model gives valid COCO results, and
the run-folder helpers."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_noisy.errors import HfNoisyError
from hf_noisy.models import train_config
from hf_noisy.models.train_config import ConfigError, TrainConfig, load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "train" / "configs"


def test_import_loads_no_heavy_module():
    code = ("import sys, hf_noisy, hf_noisy.models; from hf_noisy.models import TrainConfig, load_config, ConfigError; "
            "print(sorted(m for m in ('torch', 'transformers', 'accelerate', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": ""}).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------- config schema
def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("class_loss: mse\n", "class_loss must be one of ce, sce, gce, bootstrap, got 'mse'"),
    ("backbone: vit\n", "backbone must be one of swin, resnet, got 'vit'"),
    ("mask_postprocess: half\n", "mask_postprocess must be one of full, transformers, got 'half'"),
    ("mixed_precision: fp8\n", "mixed_precision must be one of no, bf16, fp16, got 'fp8'"),
    ("gce_q: 0\n", "gce_q must be in (0, 1], got 0"),
    ("bootstrap_beta: 1.5\n", "bootstrap_beta must be in [0, 1], got 1.5"),
    ("eval_split: dev\n", "eval_split: unknown split 'dev'"),
])
def test_a_bad_value_is_one_error_naming_its_field(tmp_path: Path, text: str, message: str):
    with pytest.raises(ConfigError) as caught:
        load_config(_yaml(tmp_path, text))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert isinstance(caught.value, HfNoisyError)


@pytest.mark.parametrize("text, message", [
    ("learning_rate: [1, 2]\n", "learning_rate must be float, got [1, 2]"),
    ("learning_rat: 0.1\nseeed: 3\n", "unknown key(s) learning_rat, seeed"),
    ("- 1\n- 2\n", "a config is a mapping of keys to values, got a list"),
    ("a: &x 1\nb: *x\n", "anchors and aliases"),
])
def test_a_bad_file_names_the_file_and_the_key(tmp_path: Path, text: str, message: str):
    path = _yaml(tmp_path, text)
    with pytest.raises(ConfigError, match=r"^" + str(path).replace(".", r"\.") + ": ") as caught:
        load_config(path)
    assert message in str(caught.value)


def test_names_overrides_and_canonical_split():
    with pytest.raises(ConfigError, match=r"no config 'tinyy' \(known: cpu-fit, cpu-shapes, r50, swin-s, tiny;"):
        load_config("tinyy", config_dir=CONFIGS)
    config = load_config("r50", {"mask2former": {"num_queries": 50}, "seed": 7, "eval_split": "val", "gce_q": None},
                         config_dir=CONFIGS)
    assert config.mask2former["num_queries"] == 50 and config.mask2former["decoder_layers"] == 10  # merged
    assert (config.seed, config.eval_split, config.gce_q) == (7, "validation", TrainConfig().gce_q)
    shipped = train_config.shipped_configs(CONFIGS)
    assert list(shipped)[0] == "tiny" and set(shipped) == {p.stem for p in CONFIGS.glob("*.yaml")}


def test_every_field_is_a_flag_with_each_configs_value():
    parser = argparse.ArgumentParser()
    train_config.add_config_flags(parser, train_config.shipped_configs(CONFIGS))
    args = parser.parse_args(["--learning-rate", "5e-5", "--freeze-batch-norm", "no", "--mask2former", "{hidden_dim: 8}",
                              "--model-name-or-path", "none"])
    overrides = train_config.config_overrides(args)
    assert overrides["learning_rate"] == 5e-5 and overrides["freeze_batch_norm"] is False
    assert overrides["mask2former"] == {"hidden_dim": 8} and overrides["model_name_or_path"] is None
    assert overrides["seed"] is None  # not given: the file's value stays
    assert "[tiny: " in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--freeze-batch-norm", "maybe"])
    assert train_config.fold_arg("1/3") == (1, 3)
    for bad in ("3/3", "x", "0/1"):
        with pytest.raises(argparse.ArgumentTypeError):
            train_config.fold_arg(bad)


# ---------------------------------------------------------------------------------------------- post-processing
def _tiny_model(num_labels: int = 3, num_queries: int = 10):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

    torch.manual_seed(0)
    backbone = SwinConfig(image_size=128, patch_size=4, embed_dim=24, depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 6],
                          window_size=4, out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, num_labels=num_labels, feature_size=32, mask_feature_size=32,
                               hidden_dim=32, encoder_feedforward_dim=64, dim_feedforward=64, encoder_layers=1,
                               decoder_layers=2, num_attention_heads=2, num_queries=num_queries, train_num_points=256)
    return Mask2FormerForUniversalSegmentation(config).eval()


def test_full_resolution_instances_of_random_logits():
    torch = pytest.importorskip("torch")
    from hf_noisy.models.postprocess import full_resolution_instances

    generator = torch.Generator().manual_seed(0)
    class_logits = torch.randn(10, 4, generator=generator)  # 3 classes + no object
    mask_logits = torch.randn(10, 16, 24, generator=generator)  # quarter of a 64x96 padded input
    instances = full_resolution_instances(class_logits, mask_logits, (60, 90), (120, 180), top_k=7)
    assert 0 < len(instances) <= 7
    scores = [score for _, _, score in instances]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    for mask, label, _ in instances:
        assert mask.shape == (120, 180) and mask.dtype == np.uint8 and mask.any() and 0 <= label < 3
    # the top pair by class probability leads unless its mask is empty: its label is among the found ones
    probabilities = class_logits.softmax(-1)[:, :-1]
    best = int(probabilities.flatten().argmax()) % 3
    assert best in {label for _, label, _ in instances}
    # all queries x classes when top_k is the whole grid, each mask still at image size
    assert len(full_resolution_instances(class_logits, mask_logits, (60, 90), (120, 180), top_k=30)) > len(instances)


@pytest.fixture(scope="module")
def rows():
    pytest.importorskip("datasets")
    from datasets import Dataset, Features, Image, Value
    from PIL import Image as PilImage

    rng = np.random.default_rng(0)
    images = [PilImage.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in ((70, 100), (96, 64))]
    features = Features({"image": Image(), "image_id": Value("int64"), "width": Value("int32"), "height": Value("int32")})
    return Dataset.from_dict({"image": images, "image_id": [11, 12], "width": [100, 64], "height": [70, 96]},
                             features=features)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "transformers"])
def test_predict_gives_valid_coco_results_at_image_size(rows, mode: str):
    from hf_noisy.masks import decode
    from hf_noisy.metrics import prepare_predictions
    from hf_noisy.models.postprocess import predict

    model = _tiny_model()
    results = predict(model, rows, [5, 9, 2], short_edge=64, max_size=96, postprocess=mode, top_k=6)
    assert results and {r["image_id"] for r in results} <= {11, 12}
    sizes = {11: (70, 100), 12: (96, 64)}
    for r in results:
        mask = decode(r["segmentation"])
        assert mask.shape == sizes[r["image_id"]] and mask.any()
        assert r["category_id"] in (5, 9, 2) and 0 <= r["score"] <= 1
        ys, xs = np.nonzero(mask)
        assert r["bbox"] == [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    if mode == "full":
        assert max(sum(r["image_id"] == i for r in results) for i in (11, 12)) <= 6
    gt = {"images": [{"id": i, "height": h, "width": w} for i, (h, w) in sizes.items()], "annotations": [],
          "categories": [{"id": c, "name": str(c)} for c in (5, 9, 2)]}
    assert len(prepare_predictions(results, gt)) == len(results)  # the metric accepts them as they are
    # one image at a time or both together, the same numbers; the model's own device by default
    again = predict(model, rows, [5, 9, 2], indices=[1], short_edge=64, max_size=96, postprocess=mode, top_k=6)
    assert again == [r for r in results if r["image_id"] == 12]


def test_predict_refuses_an_unknown_mode(rows):
    from hf_noisy.models.postprocess import predict

    with pytest.raises(HfNoisyError, match="postprocess must be one of full, transformers, got 'fast'"):
        predict(_tiny_model(), rows, [1, 2, 3], postprocess="fast")


# ---------------------------------------------------------------------------------------------- run folder
def test_resume_hint_and_latest_checkpoint(tmp_path: Path):
    from hf_noisy.models.checkpoints import RunFolderError, checkpoint_folder, latest_checkpoint, resume_hint

    command = ["python", "train.py"]
    argv = ["--dataset", "d", "--resume", "--overwrite", "--output-dir", str(tmp_path)]
    with pytest.raises(RunFolderError, match="--resume: no checkpoint in"):
        latest_checkpoint(tmp_path)
    assert resume_hint(tmp_path, command, argv).endswith(f"--dataset d --output-dir {tmp_path} --overwrite")
    for step in (2, 10):
        checkpoint_folder(tmp_path, step).mkdir(parents=True)
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step-000010"
    hint = resume_hint(tmp_path, command, ["--resume", "some/where", *argv[:2]])
    assert "the last complete checkpoint is " + str(tmp_path / "checkpoints" / "step-000010") in hint
    assert hint.endswith("python train.py --dataset d --resume")


def test_write_json_is_atomic_and_model_card_has_the_numbers(tmp_path: Path):
    from hf_noisy.models import model_card, write_json

    write_json(tmp_path / "deep" / "m.json", {"a": 1})
    assert json.loads((tmp_path / "deep" / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["m.json"]
    card = model_card(model_name="m", dataset="noisy-seg/coco-n", dataset_config="hard", split="validation",
                      metrics={"segm": {"AP": 0.5}}, benchmark="coco-n", recipe="Trained.")
    assert "value: 50.0" in card and "| segm | 50.0 | -100.0 | -100.0 |" in card and "Trained. Scores on" in card


def test_metric_inputs_give_evaluate_coco_numbers_over_split_ranks(coco_tiny: Path):
    """The training evaluation's path: each "rank" turns its share of the ground truth and results into the
    metric's per-image inputs, the metrics are merged; the numbers equal evaluate_coco on everything."""
    from hf_noisy.coco import load_coco
    from hf_noisy.masks import Crop, decode, segmentation_to_rle
    from hf_noisy.metrics import InstanceSegmentationAP, evaluate_coco
    from hf_noisy.models.postprocess import metric_inputs

    gt = load_coco(coco_tiny / "annotations" / "instances_val2017.json")
    images = gt["images"][:8]
    ids = {image["id"] for image in images}
    gt = {**gt, "images": images, "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}
    rng = np.random.default_rng(0)
    results = []  # the ground truth, eroded by a pixel row and with shuffled scores: AP strictly between 0 and 1
    for ann in gt["annotations"]:
        image = next(i for i in images if i["id"] == ann["image_id"])
        mask = decode(segmentation_to_rle(ann["segmentation"], image["height"], image["width"]))
        mask[mask.any(axis=1).argmax()] = 0
        if mask.any() and rng.random() < 0.8:
            encoded = Crop.from_full(mask).encode()
            results.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "score": float(rng.random()),
                            "segmentation": encoded.rle, "bbox": encoded.bbox})
    expected = evaluate_coco(gt, results, ("segm", "bbox", "boundary"))
    metrics = []
    for rank in range(2):
        share = [image for k, image in enumerate(images) if k % 2 == rank]
        part = {**gt, "images": share, "annotations": [a for a in gt["annotations"]
                                                       if a["image_id"] in {i["id"] for i in share}]}
        metric = InstanceSegmentationAP(("segm", "bbox", "boundary"), categories=gt["categories"])
        metric.update(*metric_inputs(part, [r for r in results if r["image_id"] in {i["id"] for i in share}]))
        metrics.append(metric)
    got = metrics[0].merge(metrics[1]).compute()
    assert 0 < got["segm"].stats["AP"] < 1
    assert {t: got[t].stats for t in got} == {t: expected[t].stats for t in expected}
