"""Issue 17: per-instance losses with provenance (+ resume), the analysis views, GCE / bootstrapping, LVIS-N
training, the model card's model-index, and the zero-detection warning. Short CPU runs of the tiny model over
builds of coco-tiny."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "train"))

import train_mask2former as m2f  # noqa: E402
from _train import _fresh_accelerate_state, _one_torch_thread  # noqa: E402,F401 (fixtures)

from hf_noisy.errors import HfNoisyError  # noqa: E402
from hf_noisy.hub import build_benchmark, load_coco_n  # noqa: E402
from hf_noisy.models import data as m2f_data  # noqa: E402
from hf_noisy.models import losses as m2f_loss  # noqa: E402
from hf_noisy.models import mask2former  # noqa: E402

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def coco_n_hard(coco_tiny: Path, tmp_path_factory) -> Path:
    return build_benchmark("coco-n", tmp_path_factory.mktemp("cn") / "coco-n", coco_root=coco_tiny,
                           configs=["clean", "hard"], max_images=6, images="shared").path


# ---------------------------------------------------------------------------------------------- losses
def test_gce_and_bootstrapping_match_hand_computed_values():
    # logits (0, ln 2, 0) -> p = (1/4, 1/2, 1/4); target 1.
    # GCE, q = 0.5: (1 - (1/2)^0.5) / 0.5 = 2 * (1 - 0.707107) = 0.585786
    # bootstrap, beta = 0.8: 0.8 * CE + 0.2 * H(p); CE = ln 2 = 0.693147,
    #   H(p) = -(1/4 ln 1/4 + 1/2 ln 1/2 + 1/4 ln 1/4) = 1.5 ln 2 = 1.039721 -> 0.554518 + 0.207944 = 0.762462
    logits = torch.tensor([[0.0, float(np.log(2.0)), 0.0]], dtype=torch.float64)
    target = torch.tensor([1])
    assert m2f_loss.generalized_cross_entropy(logits, target, q=0.5).item() == pytest.approx(0.585786, abs=1e-6)
    assert m2f_loss.soft_bootstrapping(logits, target, beta=0.8).item() == pytest.approx(0.762462, abs=1e-6)
    # weighted like CE: second row p = (1/3, 1/3, 1/3), target 2 with class weight 0.1
    # GCE q = 1: rows 1 - p_y = 0.5 and 2/3; (0.5 + 0.1 * 2/3) / 1.1 = 0.515152
    two = torch.tensor([[0.0, float(np.log(2.0)), 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    weight = torch.tensor([1.0, 1.0, 0.1], dtype=torch.float64)
    assert m2f_loss.generalized_cross_entropy(two, torch.tensor([1, 2]), weight, q=1.0).item() == pytest.approx(0.515152, abs=1e-6)


def test_gce_and_bootstrapping_reduce_to_ce_at_their_limits():
    import torch.nn.functional as F

    torch.manual_seed(0)
    logits = torch.randn(16, 5, dtype=torch.float64) * 3
    targets = torch.randint(0, 5, (16,))
    weight = torch.tensor([1.0, 2.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    ce = F.cross_entropy(logits, targets, weight=weight)
    gce = m2f_loss.generalized_cross_entropy(logits, targets, weight, q=1e-7)
    assert gce.item() == pytest.approx(ce.item(), rel=1e-5)  # (1 - p^q) / q -> -log p as q -> 0
    assert m2f_loss.soft_bootstrapping(logits, targets, weight, beta=1.0).item() == pytest.approx(ce.item(), rel=1e-12)
    assert m2f_loss.soft_bootstrapping(logits, targets, weight, beta=0.5).item() != pytest.approx(ce.item(), rel=1e-3)
    with pytest.raises(HfNoisyError, match="q must be in"):
        m2f_loss.generalized_cross_entropy(logits, targets, q=0.0)


# ---------------------------------------------------------------------------------------------- instance losses
def _rows(folder: Path) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted((folder / "instance_losses").glob("rank-*/steps-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()


def _train(dataset: Path, out: Path, *extra: str) -> int:
    return m2f.main(["--dataset", str(dataset), "--dataset-config", "hard", "--output-dir", str(out),
                     "--max-steps", "4", "--checkpoint-steps", "2", "--log-steps", "1", "--max-eval-images", "2",
                     "--log-instance-losses", *extra])


@pytest.mark.slow
def test_instance_losses_carry_provenance_and_survive_resume(coco_n_hard: Path, tmp_path: Path):
    """4 steps of the tiny model on COCO-N hard (6 images, batch 2): every step recorded. Every noise op of the
    train split appears; each step has one row per matched target (min(targets, queries) per image, counted
    here from the data pipeline itself); resuming at step 2 in the same folder, after the step-4 checkpoint was
    removed but with the rows of steps 3-4 still on disk, gives exactly the uninterrupted run's rows."""
    straight = tmp_path / "straight"
    assert _train(coco_n_hard, straight) == 0
    rows = _rows(straight)
    train = load_coco_n(coco_n_hard, "hard", split="train")
    objects = {o["id"]: o for r in train for o in r["objects"]}
    ops_in_split = {o["noise_op"] for o in objects.values() if not o["iscrowd"]}
    assert {r["noise_op"] for r in rows} == ops_in_split and len(ops_in_split) >= 4
    for r in rows:  # provenance is the row's own object's
        source = objects[r["annotation_id"]]
        assert (r["noise_op"], r["class_flipped"]) == (source["noise_op"], source["class_flipped"])
        assert r["category_id"] == source["category_id"] and r["image_id"] in {t["image_id"] for t in train}
        assert r["class_loss"] > 0 and r["mask_bce"] > 0 and 0 <= r["mask_dice"] <= 1

    config = m2f.load_config("tiny")
    dataset = m2f_data.TrainDataset(train, m2f_data.Jitter(config.image_size, config.min_scale, config.max_scale,
                                                           config.flip_prob), config.seed)
    expected = {}
    for step in range(1, 5):
        epoch, batch = divmod(step - 1, 3)  # 6 images in batches of 2: 3 per epoch
        sampler = m2f_data.EpochBatchSampler(6, 2, seed=config.seed, epoch=epoch, rank=0, world_size=1)
        keys = list(sampler)[batch]
        expected[step] = sum(min(len(dataset[key]["class_labels"]), config.mask2former["num_queries"]) for key in keys)
    got = {step: sum(r["step"] == step for r in rows) for step in range(1, 5)}
    assert got == expected and min(got.values()) > 0

    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step-000004")
    assert _train(coco_n_hard, resumed, "--resume", str(resumed / "checkpoints" / "step-000002")) == 0
    assert _rows(resumed) == rows

    # the Figure 7/10 view of this run (kept for a look in test-artifacts/)
    from hf_noisy.cli import main as cli

    ARTIFACTS.mkdir(exist_ok=True)
    figure = ARTIFACTS / "instance_losses_tiny_hard.png"
    assert cli(["analyze", "losses", str(straight), "--by", "step", "--buckets", "4", "--out", str(figure),
                "--overwrite"]) == 0  # test-artifacts/ outlives a run
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from hf_noisy.analysis import analyze_losses

    report = analyze_losses(straight, by="step", num_buckets=4)
    groups = {r["group"] for r in report.separability}
    assert "class flipped" in groups and groups - {"class flipped"} <= ops_in_split - {"none"}
    assert all(0 <= r["class_loss"] <= 1 for r in report.separability if r["n_clean"])


def test_auroc_and_groups():
    from hf_noisy.analysis import auroc, instance_groups

    assert auroc([3, 4], [1, 2]) == 1.0 and auroc([1, 2], [3, 4]) == 0.0
    assert auroc([1, 2], [1, 2]) == 0.5  # ties count half
    assert auroc([2.0], [1.0, 2.0, 3.0]) == pytest.approx((1 + 0.5) / 3)
    groups = instance_groups(np.array(["none", "erode", "none", "dilate"], object), np.array([False, False, True, True]))
    assert groups.tolist() == ["clean", "erode", "class flipped", "class flipped"]


# ---------------------------------------------------------------------------------------------- two levels
@pytest.fixture(scope="module")
def two_level_runs(coco_n_hard: Path, tmp_path_factory) -> dict[str, Path]:
    """2 steps each: GCE on clean, soft bootstrapping on hard; a small learning rate keeps the tiny model near its
    random init, whose masks are not empty, so both write non-empty results."""
    root = tmp_path_factory.mktemp("levels")
    runs = {}
    for level, loss in (("clean", ["--class-loss", "gce", "--gce-q", "0.7"]),
                        ("hard", ["--class-loss", "bootstrap", "--bootstrap-beta", "0.8"])):
        out = root / level
        assert m2f.main(["--dataset", str(coco_n_hard), "--dataset-config", level, "--output-dir", str(out),
                         "--max-steps", "2", "--learning-rate", "1e-5", "--max-eval-images", "3",
                         "--predictions-out", str(out / "results.json"), *loss]) == 0
        AcceleratorReset()
        runs[level] = out
    return runs


def AcceleratorReset() -> None:  # noqa: N802 - between the in-process runs of one fixture
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.mark.slow
def test_gce_and_bootstrapping_runs(two_level_runs: dict[str, Path]):
    for level, loss in (("clean", "gce"), ("hard", "bootstrap")):
        config = json.loads((two_level_runs[level] / "run_config.json").read_text())["config"]
        assert config["class_loss"] == loss
        metrics = json.loads((two_level_runs[level] / "model" / "metrics.json").read_text())
        assert metrics["step"] == 2 and set(metrics["metrics"]) == {"segm", "bbox", "boundary"}


@pytest.mark.slow
def test_analyze_confidence_on_two_levels(two_level_runs: dict[str, Path], capsys):
    from hf_noisy.analysis import analyze_confidence
    from hf_noisy.cli import main as cli

    files = [str(two_level_runs[level] / "results.json") for level in ("clean", "hard")]
    ARTIFACTS.mkdir(exist_ok=True)
    figure = ARTIFACTS / "confidence_two_levels.png"
    assert cli(["analyze", "confidence", *files, "--names", "clean,hard", "--out", str(figure), "--json",
                "--overwrite"]) == 0
    printed = json.loads(capsys.readouterr().out)
    report = analyze_confidence(files, names=["clean", "hard"])
    for run, shown in zip(report.runs, printed):
        scores = np.array([d["score"] for d in json.loads(Path(run["path"]).read_text())])
        assert len(scores) > 0 and run["detections"] == len(scores) == shown["detections"]
        assert run["mean_score"] == pytest.approx(scores.mean()) == shown["mean_score"]
        assert run["share_above"] == pytest.approx((scores > 0.5).mean())
    assert figure.read_bytes()[:4] == b"\x89PNG"
    assert cli(["analyze", "confidence", str(figure), "--out", str(figure)]) == 2  # the input: refused
    assert "is the input" in capsys.readouterr().err
    assert cli(["analyze", "confidence", str(figure), "--out", str(figure.with_name("unwritten.png"))]) == 2
    assert "JSON" in capsys.readouterr().err  # not JSON: one error line


# ---------------------------------------------------------------------------------------------- LVIS-N
def _lvis(coco: dict, folder: str, count: int) -> dict:
    """An LVIS v1-style file over the first ``count`` COCO images: coco_url names, frequencies, federated lists."""
    categories = [{"id": c["id"], "name": c["name"], "synset": c["name"].replace(" ", "_") + ".n.01",
                   "frequency": ("r", "c", "f")[i % 3]} for i, c in enumerate(coco["categories"])]
    images = []
    for image in coco["images"][:count]:
        seen = {a["category_id"] for a in coco["annotations"] if a["image_id"] == image["id"]}
        unseen = [c["id"] for c in categories if c["id"] not in seen]
        images.append({"id": image["id"], "width": image["width"], "height": image["height"],
                       "coco_url": f"http://images.cocodataset.org/{folder}/{image['file_name']}",
                       "neg_category_ids": unseen[:3], "not_exhaustive_category_ids": sorted(seen)[:1]})
    ids = {i["id"] for i in images}
    annotations = [{k: v for k, v in a.items() if k != "iscrowd"} for a in coco["annotations"]
                   if a["image_id"] in ids and not a.get("iscrowd")]
    return {"images": images, "annotations": annotations, "categories": categories}


@pytest.mark.slow
def test_lvis_n_trains_and_writes_a_submission_the_board_accepts(coco_tiny: Path, tmp_path: Path):
    from hf_noisy.coco import load_coco
    from hf_noisy.hub import build_benchmark, export_coco
    from hf_noisy.leaderboard.rules import rules_for
    from hf_noisy.leaderboard.submission import check_results, parse_results

    root = tmp_path / "lvis"
    root.mkdir()
    for split, folder in (("train", "train2017"), ("val", "val2017")):
        coco = load_coco(coco_tiny / "annotations" / f"instances_{folder}.json")
        (root / f"lvis_v1_{split}.json").write_text(json.dumps(_lvis(coco, folder, 4)))
    data = build_benchmark("lvis-n", tmp_path / "lvis-n", lvis_root=root, coco_root=coco_tiny,
                           configs=["clean", "hard"]).path
    out = tmp_path / "run"
    assert m2f.main(["--dataset", str(data), "--dataset-config", "hard", "--output-dir", str(out), "--max-steps", "2",
                     "--learning-rate", "1e-5", "--predictions-out", str(out / "results.json")]) == 0
    model = json.loads((out / "model" / "config.json").read_text())
    assert len(model["id2label"]) == len(json.loads((data / "hf_noisy_benchmark.json").read_text())["categories"])
    metrics = json.loads((out / "model" / "metrics.json").read_text())["metrics"]
    assert {"APr", "APc", "APf"} <= set(metrics["segm"])  # LVIS rules
    results = json.loads((out / "results.json").read_text())
    per_image = {}
    for det in results:
        per_image[det["image_id"]] = per_image.get(det["image_id"], 0) + 1
    assert max(per_image.values()) == 300  # tiny model: 20 queries x 80 classes, top 300 pairs
    gt = export_coco(data, "clean", "validation")
    checked = check_results(parse_results((out / "results.json").read_bytes()), gt,
                            max_per_image=rules_for("lvis-n").max_per_image)
    assert len(checked) == len(results)


# ---------------------------------------------------------------------------------------------- card, warning
def test_model_card_has_model_index_results():
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    args, config = m2f.parse_args(["--dataset", "noisy-seg/coco-n", "--dataset-config", "hard", "--revision", "v1.0",
                                   "--output-dir", "runs/m2f-hard", "--push-to-hub", "me/m2f-r50-hard"])
    metrics = {"segm": {"AP": 0.4123, "AP50": 0.6}, "boundary": {"AP": 0.3012}, "bbox": {"AP": 0.4456}}
    card = ModelCard(m2f.model_card(args, config, metrics))
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert name == "m2f-r50-hard"
    got = {r.metric_type: r.metric_value for r in results}
    assert got == {"mask_ap": 41.23, "boundary_ap": 30.12, "box_ap": 44.56}
    assert {(r.dataset_type, r.dataset_config, r.dataset_split, r.dataset_revision) for r in results} == {
        ("noisy-seg/coco-n", "hard", "validation", "v1.0")}
    assert "noisy-seg/coco-n" in card.data.datasets and "| segm | 41.2 |" in card.text


def test_zero_detections_warn_why(coco_n_hard: Path, tmp_path: Path, capsys):
    """A model whose mask embeddings are all zero has mask logits 0 everywhere, so no mask survives the
    threshold (> 0): the evaluation has no detections and says why."""
    model = mask2former.build_model(m2f.load_config("tiny"), m2f_data.class_names_of(load_coco_n(coco_n_hard, "clean", split="validation")))
    for layer in model.model.transformer_module.decoder.mask_predictor.mask_embedder.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    model.save_pretrained(tmp_path / "empty")
    assert m2f.main(["--eval-only", str(tmp_path / "empty"), "--dataset", str(coco_n_hard), "--output-dir",
                     str(tmp_path / "ev"), "--max-eval-images", "2"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: no detections on 2 validation images" in out and "mask is empty at the threshold" in out
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["metrics"]["segm"]["AP"] <= 0


# ---------------------------------------------------------------------------------------------- the CPU recipe
@pytest.mark.slow
def test_cpu_fit_recipe_learns_real_images(coco_tiny: Path, tmp_path: Path, capsys):
    """`--config cpu-fit` on the first 4 real coco-tiny train images, evaluated on those images, shortened to
    60 steps (the README's run is 600): the stated lower threshold is on the loss, which falls below 60% of its
    first value (observed: 51.8 -> 24.9 by step 50). Masks come later: at 60 steps the evaluation has no
    detections yet (observed), at 300 steps the full run scored mask AP 0.07 on these images."""
    data = build_benchmark("coco-n", tmp_path / "coco-n", coco_root=coco_tiny, configs=["clean"], max_images=4,
                           images="shared").path
    out = tmp_path / "fit"
    assert m2f.main(["--config", "cpu-fit", "--dataset", str(data), "--output-dir", str(out), "--max-steps", "60",
                     "--eval-split", "train", "--log-steps", "10", "--eval-steps", "1000"]) == 0
    losses = [float(line.split("loss ")[1]) for line in capsys.readouterr().out.splitlines() if ": loss " in line]
    assert len(losses) == 7 and losses[-1] < 0.6 * losses[0], losses
    metrics = json.loads((out / "model" / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"segm", "bbox", "boundary"}


@pytest.mark.slow
def test_cpu_shapes_recipe_learns_shapes_n(tmp_path: Path):
    """`--config cpu-shapes` on a small Shapes-N build, shortened from 3,000 to 400 steps (the poly schedule
    spans the 400): stated lower threshold, validation mask AP >= 0.04, where an untrained model scores about
    0.00 (observed on this build: 0.074 at step 400, 69 CPU-s, one thread). The full recipe reaches 0.51 (README)."""
    from hf_noisy.hub import build_benchmark

    data = build_benchmark("shapes-n", tmp_path / "shapes-n", num_train=96, num_val=24, configs=["clean"],
                           images="shared").path
    out = tmp_path / "run"
    assert m2f.main(["--config", "cpu-shapes", "--dataset", str(data), "--output-dir", str(out), "--max-steps", "400",
                     "--eval-steps", "400", "--checkpoint-steps", "400"]) == 0
    record = json.loads((out / "checkpoints" / "step-000400" / "metrics.json").read_text())
    assert record["cpu_seconds"] > 0
    assert record["metrics"]["segm"]["AP"] >= 0.04, record["metrics"]["segm"]
