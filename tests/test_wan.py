"""COCO-WAN (hf_noisy.wan): SAM re-makes masks from weak prompts.

A tiny random-initialised SAM (``hf_noisy.wan.random_sam``, seeded) stands in for ViT-H: no weights can be
downloaded here. Its masks are meaningless, but every code path (processor, embeddings, batched decoder,
post-processing, cache, sharding, class noise) is the real one. Images are real coco-tiny images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from pycocotools import mask as mask_utils  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

from hf_noisy.coco import load_coco  # noqa: E402
from hf_noisy.noise import ClassNoise, NoiseSpec, SpatialOp, apply_noise  # noqa: E402
from hf_noisy.wan import (SAM_IOU_DECIMALS, SamSegmenter, WanError, load_image, make_prompt, random_sam,  # noqa: E402
                          weak_annotate)
from hf_noisy.wan.cache import ChunkCache  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N_IMAGES = 8  # 4 chunks of 2 images: 2 processes take 4 images each


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory) -> Path:
    """A tiny random SAM (64-d, 2 vision layers, 256x256 input) and its processor, saved as a local checkpoint."""
    return random_sam(tmp_path_factory.mktemp("tiny-sam") / "sam")


@pytest.fixture(scope="module")
def small_coco(coco_tiny, tmp_path_factory) -> Path:
    """The first images of coco-tiny train (with their crowd regions) plus one annotation whose mask is empty."""
    data = json.loads((coco_tiny / "annotations" / "instances_train2017.json").read_text())
    data["images"] = data["images"][:N_IMAGES]
    ids = {image["id"] for image in data["images"]}
    data["annotations"] = [ann for ann in data["annotations"] if ann["image_id"] in ids]
    image = data["images"][0]
    empty = mask_utils.encode(np.zeros((image["height"], image["width"]), np.uint8, order="F"))
    data["annotations"].append({"id": 10**12, "image_id": image["id"], "category_id": data["categories"][0]["id"],
                                "iscrowd": 0, "area": 0, "bbox": [0, 0, 0, 0],
                                "segmentation": {"size": empty["size"], "counts": empty["counts"].decode()}})
    assert any(ann["iscrowd"] for ann in data["annotations"])
    path = tmp_path_factory.mktemp("small") / "instances.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def images_dir(coco_tiny) -> Path:
    return coco_tiny / "train2017"


@pytest.fixture(scope="module")
def medium(tiny_sam, small_coco, images_dir, tmp_path_factory) -> Path:
    """One uninterrupted single-process medium run (point prompts), 2 images per chunk."""
    out = tmp_path_factory.mktemp("medium") / "medium.json"
    weak_annotate(small_coco, images_dir, out, prompt="point", model=tiny_sam, image_batch_size=2)
    return out


@pytest.fixture(scope="module")
def hard(tiny_sam, small_coco, images_dir, medium) -> Path:
    """The hard level, single process, beside the medium run (it reuses medium's SAM cache)."""
    out = medium.parent / "hard.json"
    weak_annotate(small_coco, images_dir, out, prompt="point", class_noise=0.4, model=tiny_sam, image_batch_size=2)
    return out


def _image_batches(small_coco, images_dir, n=6):
    data = json.loads(small_coco.read_text())
    for image in data["images"][:n]:
        anns = [a for a in data["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]]
        prompts = [make_prompt("box", a["segmentation"], image["height"], image["width"]) for a in anns]
        yield image, [p for p in prompts if p is not None]


# -- prompts ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_prompts_follow_the_released_scripts(coco_tiny):
    """Box = inclusive pixel box of COCO.annToMask (np.where min/max, as extract_bounding_box_and_area);
    point = its centre, on every coco-tiny train annotation (crowd RLEs included)."""
    coco = COCO(str(coco_tiny / "annotations" / "instances_train2017.json"))
    checked = 0
    for ann in coco.dataset["annotations"]:
        image = coco.imgs[ann["image_id"]]
        rows, cols = np.where(coco.annToMask(ann))
        box = make_prompt("box", ann["segmentation"], image["height"], image["width"])
        point = make_prompt("point", ann["segmentation"], image["height"], image["width"])
        if len(rows) == 0:
            assert box is None and point is None
            continue
        expected = [cols.min(), rows.min(), cols.max(), rows.max()]
        assert box == [float(v) for v in expected] and all(type(v) is float for v in box)
        assert point == [(expected[0] + expected[2]) / 2, (expected[1] + expected[3]) / 2]
        checked += 1
    assert checked > 600
    with pytest.raises(WanError, match="prompt must be"):
        make_prompt("mask", [[0, 0, 1, 0, 1, 1]], 2, 2)


# -- batched decoder = the reference's one-prompt-at-a-time loop ---------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["box", "point"])
def test_batched_masks_equal_one_prompt_at_a_time(tiny_sam, small_coco, images_dir, kind):
    """hf-noisy's decoding (all prompts of an image in one call, float64 decoder on a CPU) vs the reference
    (one float32 call per prompt, all three masks upsampled, then the argmax, as SamPredictor): same selected
    masks and IoUs. Batching and the decoder's precision change float sums only, so logits differ by ~1e-7;
    any pixel that flips must have its logit that close to the 0.0 threshold."""
    segmenter, reference = SamSegmenter(tiny_sam), SamSegmenter(tiny_sam, decoder_dtype="float32")
    pixels = prompts_total = flipped = 0
    for image, boxes in _image_batches(small_coco, images_dir):
        prompts = boxes if kind == "box" else [[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in boxes]
        prepared = segmenter.prepare([load_image(images_dir / image["file_name"], image["height"], image["width"])])
        embedding = segmenter.embed(prepared)
        size, resized = prepared.original_sizes[0], prepared.reshaped_sizes[0]
        batched = segmenter.segment(embedding, kind, prompts, size, resized, batch_size=64)
        single = reference.segment_one_by_one(embedding, kind, prompts, size, resized)
        np.testing.assert_allclose(batched.iou, single.iou, rtol=0, atol=1e-6)
        differ = batched.masks != single.masks
        prompts_total += len(prompts)
        pixels += differ[0].size * len(prompts)
        for k in np.flatnonzero(differ.any(axis=(1, 2))):
            # the raw upsampled logits of prompt k, batched (alone in its call is the single path)
            logits = []
            for model, prompt_set, index in ((segmenter, prompts, k), (reference, [prompts[k]], 0)):
                with torch.inference_mode():
                    out = model.model(image_embeddings=embedding.to(model.decoder_dtype), multimask_output=True,
                                      **model._prompt_tensors(kind, prompt_set, size, resized))
                best = int(out.iou_scores[0, index].float().argmax())
                low = out.pred_masks[0, index, best][None, None].float()
                logits.append(segmenter.processor.post_process_masks([low], [size], [resized], binarize=False)[0][0, 0].numpy())
            near = np.abs(np.stack(logits))[:, differ[k]]
            assert near.max() < 1e-5, "a pixel far from the threshold changed: not float reordering"
            flipped += int(differ[k].sum())
    assert prompts_total > 50
    # measured here (2-core AMD EPYC, torch 2.13 CPU): 21 of 19.1 M pixels for boxes, 59 for points, all within 1e-5 of 0
    print(f"{kind}: {flipped} of {pixels} pixels differ over {prompts_total} prompts")
    assert flipped <= 1e-5 * pixels


@pytest.mark.slow
def test_low_precision_dtypes_run(tiny_sam, small_coco, images_dir):
    """bfloat16/float16 run on CPU too and give masks of the same shape (bf16/fp16 are for GPUs: masks differ)."""
    image, boxes = next(_image_batches(small_coco, images_dir))
    picture = load_image(images_dir / image["file_name"], image["height"], image["width"])
    for dtype in ("bfloat16", "float16"):
        segmenter = SamSegmenter(tiny_sam, dtype=dtype)
        prepared = segmenter.prepare([picture])
        result = segmenter.segment(segmenter.embed(prepared), "box", boxes[:3], prepared.original_sizes[0],
                                   prepared.reshaped_sizes[0], batch_size=2)
        assert result.masks.shape == (3, image["height"], image["width"]) and len(result.iou) == 3
    with pytest.raises(WanError, match="dtype"):
        SamSegmenter(tiny_sam, dtype="int8")


# -- a run: output format and provenance ---------------------------------------------------------------------
@pytest.mark.slow
def test_output_format_and_provenance(tiny_sam, small_coco, images_dir, medium):
    clean = json.loads(small_coco.read_text())
    raw = medium.read_bytes()
    out = load_coco(medium, allow_empty_masks=True)  # a valid COCO file
    assert [a["id"] for a in out["annotations"]] == [a["id"] for a in clean["annotations"]]
    assert out["images"] == clean["images"] and out["categories"] == clean["categories"]
    assert list(out)[-1] == "annotations"
    sizes = {image["id"]: (image["height"], image["width"]) for image in clean["images"]}
    segmenter = SamSegmenter(tiny_sam)
    by_image: dict[int, list] = {}
    for ann, new in zip(clean["annotations"], out["annotations"]):
        height, width = sizes[ann["image_id"]]
        assert new["class_flipped"] is False and new["original_category_id"] == ann["category_id"] == new["category_id"]
        assert new["noise_param"] is None and new["iscrowd"] == ann["iscrowd"] and new["image_id"] == ann["image_id"]
        if ann["iscrowd"] or ann["id"] == 10**12:  # crowd (default) and the empty clean mask: kept as they are
            assert new["noise_op"] == "none" and new["sam_prompt"] is None and new["sam_iou"] is None
            assert new["segmentation"] == ann["segmentation"] and new["bbox"] == ann["bbox"]
            continue
        assert new["noise_op"] == "sam_point" and isinstance(new["sam_iou"], float)
        assert new["sam_prompt"] == make_prompt("point", ann["segmentation"], height, width)
        rle = new["segmentation"]
        assert isinstance(rle["counts"], str) and rle["size"] == [height, width]
        assert new["area"] == int(mask_utils.area(rle)) and isinstance(new["area"], int)
        assert new["bbox"] == [float(v) for v in mask_utils.toBbox(rle)] and all(type(v) is float for v in new["bbox"])
        by_image.setdefault(ann["image_id"], []).append(new)
    # every mask is the one SAM gives for that annotation's own prompt
    image = clean["images"][1]
    prepared = segmenter.prepare([load_image(images_dir / image["file_name"], image["height"], image["width"])])
    anns = by_image[image["id"]]
    expected = segmenter.segment(segmenter.embed(prepared), "point", [a["sam_prompt"] for a in anns],
                                 prepared.original_sizes[0], prepared.reshaped_sizes[0])
    for ann, mask, iou in zip(anns, expected.masks, expected.iou):
        assert np.array_equal(mask_utils.decode(ann["segmentation"]), mask.astype(np.uint8))
        assert ann["sam_iou"] == round(iou, SAM_IOU_DECIMALS)  # stored with 4 decimals
    info = out["info"]["hf_noisy"]
    assert info["input_sha256"] and info["wan"]["level"] == "medium" and info["wan"]["prompt"] == "point"
    summary = info["wan"]["summary"]
    crowd = sum(a["iscrowd"] for a in clean["annotations"])
    assert summary["crowd_kept"] == crowd and summary["empty_input_kept"] == 1
    assert summary["prompted"] == len(clean["annotations"]) - crowd - 1
    assert raw == medium.read_bytes()


@pytest.mark.slow
def test_include_crowd_prompts_crowd_regions(tiny_sam, small_coco, images_dir, tmp_path):
    out = tmp_path / "easy.json"
    summary = weak_annotate(small_coco, images_dir, out, prompt="box", model=tiny_sam, include_crowd=True)
    anns = json.loads(out.read_text())["annotations"]
    crowd = [a for a in anns if a["iscrowd"]]
    assert crowd and all(a["noise_op"] == "sam_box" and len(a["sam_prompt"]) == 4 for a in crowd)
    assert summary.crowd_kept == 0 and summary.prompted == len(anns) - 1


# -- resumable, sharded, reproducible ------------------------------------------------------------------------
KILL_AFTER_TWO_IMAGES = """
import os, signal, sys
from hf_noisy.wan import weak_annotate

def kill(done):
    if done >= 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind, as a crash or an evicted job

weak_annotate(sys.argv[1], sys.argv[2], sys.argv[3], prompt="point", model=sys.argv[4], image_batch_size=2, on_chunk=kill)
"""


@pytest.mark.slow
def test_killed_run_resumes_to_identical_bytes(tiny_sam, small_coco, images_dir, medium, tmp_path):
    out = tmp_path / "medium.json"
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_TWO_IMAGES, str(small_coco), str(images_dir), str(out),
                             str(tiny_sam)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not out.exists() and not list(tmp_path.glob(".medium.json*"))  # nothing that looks complete
    [part] = (tmp_path / ".hf-noisy-wan-cache").glob("*/part-*.jsonl")
    assert part.read_bytes().count(b"\n") == 1
    with open(part, "ab") as handle:  # as if killed in the middle of writing the next chunk
        handle.write(b'1\t[[12, "abc')
    calls = []
    weak_annotate(small_coco, images_dir, out, prompt="point", model=tiny_sam, image_batch_size=2, on_chunk=calls.append)
    assert calls == [4, 6, 8]  # only the remaining chunks were computed
    assert out.read_bytes() == medium.read_bytes()
    assert part.read_bytes().count(b"\n") == 4 and part.read_bytes().endswith(b"\n")


@pytest.mark.slow
def test_any_process_and_thread_count_gives_identical_bytes(tiny_sam, small_coco, images_dir, hard, tmp_path,
                                                            two_cpu_processes):
    """The hard level three ways: in this process (torch's default thread count, OMP_NUM_THREADS as the
    environment has it), 2 accelerate CPU processes (gloo) with OMP_NUM_THREADS=1 each computing every other
    chunk, and 1 process with OMP_NUM_THREADS=2: byte-identical. (With a float32 decoder, sam_iou differed in
    the 9th digit between 1 and 2 threads on a 2-core AMD EPYC.)"""
    env = {**os.environ}
    env.pop("ACCELERATE_USE_CPU", None)  # hf-noisy must pick CPU/gloo by itself on a machine without CUDA
    args = ["-m", "hf_noisy.cli", "wan", str(small_coco), "--images", str(images_dir), "--prompt", "point",
            "--class-noise", "0.4", "--model", str(tiny_sam), "--image-batch-size", "2", "--json"]
    two, threads = tmp_path / "two-processes" / "hard.json", tmp_path / "two-threads" / "hard.json"
    result = subprocess.run([*two_cpu_processes(), *args, "-o", str(two)], capture_output=True, text=True,
                            env={**env, "OMP_NUM_THREADS": "1"}, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["class_flipped"] > 0  # only the main process prints
    parts = sorted((two.parent / ".hf-noisy-wan-cache").glob("*/part-*.jsonl"))
    chunks = [[int(line.split(b"\t")[0]) for line in p.read_bytes().splitlines()] for p in parts]
    assert [p.name for p in parts] == ["part-00000.jsonl", "part-00001.jsonl"] and chunks == [[0, 2], [1, 3]]
    result = subprocess.run([sys.executable, *args, "-o", str(threads)], capture_output=True, text=True,
                            env={**env, "OMP_NUM_THREADS": "2"}, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert two.read_bytes() == hard.read_bytes()
    assert threads.read_bytes() == hard.read_bytes()


@pytest.mark.slow
def test_decoder_outputs_do_not_depend_on_the_thread_count(tiny_sam, small_coco, images_dir):
    """The same prompts decoded with 1 and 2 torch threads: the default decoder (float64 on a CPU, outputs
    rounded to float32) gives bit-identical IoUs and masks; a float32 decoder is measured alongside, and every
    pixel it flips must lie within float32 noise of the threshold."""
    default, float32 = SamSegmenter(tiny_sam), SamSegmenter(tiny_sam, decoder_dtype="float32")
    assert default.decoder_dtype == torch.float64 and float32.decoder_dtype == torch.float32
    work = []
    for image, boxes in _image_batches(small_coco, images_dir, n=N_IMAGES):
        prepared = default.prepare([load_image(images_dir / image["file_name"], image["height"], image["width"])])
        points = [[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in boxes]
        work.append((default.embed(prepared), points, prepared.original_sizes[0], prepared.reshaped_sizes[0]))
    threads = torch.get_num_threads()
    runs = {}
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            runs[count] = [(s.segment(e, "point", p, size, resized), s) for e, p, size, resized in work
                           for s in (default, float32)]
    finally:
        torch.set_num_threads(threads)
    differ = {"iou": 0, "pixels": 0}
    for (a, segmenter), (b, _) in zip(runs[1], runs[2]):
        if segmenter is default:
            assert a.iou == b.iou and np.array_equal(a.masks, b.masks)
        else:
            differ["iou"] += sum(x != y for x, y in zip(a.iou, b.iou))
            differ["pixels"] += int((a.masks != b.masks).sum())
    # measured here (2-core AMD EPYC, MKL): float32 differs in a few IoUs (~1e-9), rarely in a pixel
    print(f"float32 decoder, 1 vs 2 threads: {differ['iou']} IoUs and {differ['pixels']} pixels differ")
    assert sum(len(p) for _, p, _, _ in work) > 50


@pytest.mark.slow
def test_max_images_and_a_random_sam_from_the_cli(tiny_sam, small_coco, images_dir, medium, tmp_path):
    """`hf-noisy random-sam DIR` writes the same checkpoint as random_sam (seed 0); `hf-noisy wan --max-images 4`
    keeps the first 4 images of the file and their annotations, with the masks of the full run."""
    from hf_noisy.cli import main

    assert main(["random-sam", str(tmp_path / "sam")]) == 0
    assert (tmp_path / "sam" / "model.safetensors").read_bytes() == (tiny_sam / "model.safetensors").read_bytes()
    assert main(["random-sam", str(tmp_path / "sam")]) == 2  # an existing folder is refused
    out = tmp_path / "four.json"
    assert main(["wan", str(small_coco), "--images", str(images_dir), "-o", str(out), "--prompt", "point",
                 "--model", str(tmp_path / "sam"), "--image-batch-size", "2", "--max-images", "4", "--no-progress"]) == 0
    full, four = json.loads(medium.read_text()), json.loads(out.read_text())
    assert four["images"] == full["images"][:4]
    kept = {image["id"] for image in four["images"]}
    expected = [a for a in full["annotations"] if a["image_id"] in kept]
    assert [a["id"] for a in four["annotations"]] == [a["id"] for a in expected]
    for a, b in zip(four["annotations"], expected):
        assert a == b
    wan = four["info"]["hf_noisy"]["wan"]
    assert wan["max_images"] == 4 and wan["summary"]["images"] == 4 and wan["decoder_dtype"] == "float64"
    with pytest.raises(WanError, match="max_images"):
        weak_annotate(small_coco, images_dir, out, prompt="point", model=tiny_sam, max_images=0)
    with pytest.raises(WanError, match="decoder_dtype must be"):
        weak_annotate(small_coco, images_dir, out, prompt="point", model=tiny_sam, decoder_dtype="int8")


def test_random_sam_is_seeded_and_leaves_the_global_rng_alone(tmp_path):
    state = torch.random.get_rng_state()
    first = random_sam(tmp_path / "a", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    again, other = random_sam(tmp_path / "b", seed=3), random_sam(tmp_path / "c", seed=4)
    weights = [(p / "model.safetensors").read_bytes() for p in (first, again, other)]
    assert weights[0] == weights[1] != weights[2]
    assert (first / "processor_config.json").is_file()
    with pytest.raises(WanError, match="size must be one of"):
        random_sam(tmp_path / "d", size="giant")


@pytest.mark.slow
def test_stored_iou_has_the_documented_precision(medium):
    ious = [a["sam_iou"] for a in json.loads(medium.read_text())["annotations"] if a["sam_iou"] is not None]
    assert ious and all(round(v, SAM_IOU_DECIMALS) == v for v in ious)
    assert len(set(ious)) > 1  # real values, not a constant (a random SAM's IoU head says ~0.004)


def test_hard_is_medium_plus_class_noise(medium, hard):
    hard = json.loads(hard.read_text())
    med = json.loads(medium.read_text())
    spec = NoiseSpec(seed=1, class_noise=ClassNoise("symmetric", 0.4))
    assert hard["annotations"] == apply_noise(med, spec, allow_empty_masks=True).data["annotations"]
    eligible = flipped = 0
    for m, h in zip(med["annotations"], hard["annotations"]):
        assert h["segmentation"] == m["segmentation"] and h["noise_op"] == m["noise_op"] and h["sam_iou"] == m["sam_iou"]
        assert h["original_category_id"] == m["category_id"]
        assert h["class_flipped"] == (h["category_id"] != m["category_id"])
        if m["iscrowd"]:
            assert not h["class_flipped"]
            continue
        eligible += 1
        flipped += h["class_flipped"]
    rate, sd = flipped / eligible, (0.4 * 0.6 / eligible) ** 0.5
    assert abs(rate - 0.4) < 4 * sd, (flipped, eligible)
    info = hard["info"]["hf_noisy"]
    assert info["wan"]["level"] == "hard" and info["spec"]["class_noise"] == {"kind": "symmetric", "rate": 0.4}
    assert info["wan"]["summary"]["class_flipped"] == flipped


def test_noise_engine_keeps_an_earlier_noise_op():
    data = {"images": [{"id": 1, "height": 20, "width": 20}], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
            "annotations": [{"id": i, "image_id": 1, "category_id": 1, "iscrowd": 0, "noise_op": "sam_box", "noise_param": None,
                             "segmentation": [[2, 2, 15, 2, 15, 15, 2, 15]]} for i in range(1, 40)]}
    classes = apply_noise(data, NoiseSpec(class_noise=ClassNoise("symmetric", 0.5))).data["annotations"]
    assert {a["noise_op"] for a in classes} == {"sam_box"}
    spatial = apply_noise(data, NoiseSpec(spatial=(SpatialOp("dilate", 0.5, 3),))).data["annotations"]
    assert {a["noise_op"] for a in spatial} == {"sam_box", "dilate"}


def test_cache_key_covers_inputs_and_options(tmp_path):
    fields = {"input_sha256": "a", "prompt": "box", "model_fingerprint": "m", "batch_size": 64}
    base = ChunkCache(tmp_path, fields)
    for change in ({"input_sha256": "b"}, {"prompt": "point"}, {"model_fingerprint": "n"}, {"batch_size": 8}):
        other = ChunkCache(tmp_path, {**fields, **change})
        assert other.directory != base.directory and other.done() == set()
    base.append(3, [[1, "x"]])
    assert ChunkCache(tmp_path, fields, rank=1).done() == {3}
    with base.exclusive():  # a second run on the same cache and rank stops instead of writing the same file
        with pytest.raises(WanError, match="another run is writing"):
            with ChunkCache(tmp_path, fields).exclusive():
                pass
        with ChunkCache(tmp_path, fields, rank=1).exclusive():
            pass
    with ChunkCache(tmp_path, fields).exclusive():  # released
        pass
    assert json.loads((base.directory / "key.json").read_text())["prompt"] == "box"


# -- errors and the CLI ---------------------------------------------------------------------------------------
def test_cli_errors_name_the_problem(tiny_sam, small_coco, tmp_path, capsys):
    from hf_noisy.cli import main

    (tmp_path / "images").mkdir()
    args = ["wan", str(small_coco), "--images", str(tmp_path / "images"), "-o", str(tmp_path / "o.json"),
            "--prompt", "box", "--model", str(tiny_sam), "--no-progress"]
    assert main(args) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "o.json").exists()
    data = json.loads(small_coco.read_text())
    first = data["images"][0]
    import cv2

    cv2.imwrite(str(tmp_path / "images" / first["file_name"]), np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(WanError, match="12x10 but the COCO file says"):
        load_image(tmp_path / "images" / first["file_name"], first["height"], first["width"])
    with pytest.raises(WanError, match="prompt must be"):
        weak_annotate(small_coco, tmp_path / "images", tmp_path / "o.json", prompt="mask", model=tiny_sam)


def test_cli_help_explains_levels():
    result = subprocess.run([sys.executable, "-m", "hf_noisy.cli", "wan", "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    for text in ("--prompt box", "--prompt point --class-noise 0.4", "accelerate launch", "--include-crowd",
                 "--max-images", "hf-noisy random-sam", "any thread count"):
        assert text in result.stdout


@pytest.mark.slow
def test_build_coco_wan_from_sam_outputs(tiny_sam, coco_tiny, tmp_path):
    """The three levels made by `hf-noisy wan` build COCO-WAN: load_dataset(OUT, "medium") gives rows with
    images, SAM provenance and the clean validation; the card scores each level against the clean masks."""
    from datasets import load_dataset

    from hf_noisy.cli import main
    from hf_noisy.hub import build_benchmark, export_coco

    n = 3
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for split in ("train", "val"):
        (root / f"{split}2017").symlink_to(coco_tiny / f"{split}2017")
        data = json.loads((coco_tiny / "annotations" / f"instances_{split}2017.json").read_text())
        data["images"] = data["images"][:n]
        kept = {image["id"] for image in data["images"]}
        data["annotations"] = [a for a in data["annotations"] if a["image_id"] in kept]
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(data))
    wan = tmp_path / "wan"
    train = str(root / "annotations" / "instances_train2017.json")
    common = ["--images", str(root / "train2017"), "--model", str(tiny_sam), "--no-progress"]
    assert main(["wan", train, "-o", str(wan / "easy.json"), "--prompt", "box", *common]) == 0
    assert main(["wan", train, "-o", str(wan / "medium.json"), "--prompt", "point", *common]) == 0
    assert main(["wan", train, "-o", str(wan / "hard.json"), "--prompt", "point", "--class-noise", "0.4", *common]) == 0

    out = build_benchmark("coco-wan", tmp_path / "coco-wan", coco_root=root, wan_dir=wan).path
    medium = load_dataset(str(out), "medium")
    for row in medium["train"]:
        assert row["image"].size == (row["width"], row["height"])
        for obj in row["objects"]:
            if obj["iscrowd"]:
                assert obj["noise_op"] == "none" and obj["sam_prompt"] is None
            else:
                assert obj["noise_op"] == "sam_point" and len(obj["sam_prompt"]) == 2  # the box-centre point
                assert isinstance(obj["sam_iou"], float)  # the IoU head's raw output (a random model's can be < 0)
    clean = load_dataset(str(out), "clean", split="validation")
    assert medium["validation"]["objects"] == clean["objects"]
    assert export_coco(out, "hard", "validation")["annotations"] == export_coco(out, "clean", "validation")["annotations"]
    easy = export_coco(out, "easy", "train")["annotations"]
    assert {a["noise_op"] for a in easy} <= {"sam_box", "none"} and any(a["noise_op"] == "sam_box" for a in easy)
    meta = json.loads((out / "hf_noisy_benchmark.json").read_text())
    for level in ("easy", "medium", "hard"):
        made_by = meta["configs"][level]["file"]["made_by"]
        assert made_by["wan"]["level"] == level and made_by["wan"]["model"] == str(tiny_sam)
        assert meta["configs"][level]["quality"]["all"]["mask_AP"] < 1.0  # random SAM masks are far from clean
    assert "Annotation quality" in (out / "README.md").read_text()
