"""hf-noisy push-metric through the loopback Hub: the metric becomes a gradio Space with its card and widget, and
evaluate.load("noisy-seg/mask_boundary_ap") downloads it from there and gives the local module's numbers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import HfApi, hf_hub_download

from hf_noisy.cli import main
from hf_noisy.coco import load_coco

MODULE = Path(__file__).resolve().parents[1] / "eval" / "mask_boundary_ap"
SPACE = "noisy-seg/mask_boundary_ap"


@pytest.fixture(scope="module")
def inputs(shared_dir: Path) -> tuple[list[dict], list[dict]]:
    """Per-image predictions and references of 2 coco-tiny val images (the reference detections)."""
    gt = load_coco(shared_dir / "data" / "coco-tiny" / "annotations" / "instances_val2017.json")
    detections = json.loads((shared_dir / "data" / "vectors" / "eval_val2017_detections.json").read_text())
    predictions, references = [], []
    for image in gt["images"][:2]:
        dets = [d for d in detections if d["image_id"] == image["id"]]
        predictions.append({"masks": [d["segmentation"] for d in dets], "scores": [d["score"] for d in dets],
                            "labels": [d["category_id"] for d in dets]})
        references.append({"image_id": image["id"], "height": image["height"], "width": image["width"],
                           "annotations": [a for a in gt["annotations"] if a["image_id"] == image["id"]]})
    return predictions, references


def test_push_metric_then_evaluate_load_from_the_hub(inputs, hub, tmp_path: Path, capsys):
    import evaluate

    assert main(["push-metric", "--repo-id", SPACE]) == 0
    assert f"spaces/{SPACE}" in capsys.readouterr().out
    api = HfApi()
    info = api.space_info(SPACE)
    assert info.sdk == "gradio"
    assert set(api.list_repo_files(SPACE, repo_type="space")) == {
        ".gitattributes", "mask_boundary_ap.py", "README.md", "app.py", "requirements.txt"}
    card = Path(hf_hub_download(SPACE, "README.md", repo_type="space", cache_dir=tmp_path)).read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert (meta["sdk"], meta["app_file"]) == ("gradio", "app.py") and {"evaluate", "metric"} <= set(meta["tags"])

    predictions, references = inputs
    local = evaluate.load(str(MODULE)).compute(predictions=predictions, references=references)
    remote_module = evaluate.load(SPACE)
    assert any(path == f"/spaces/{SPACE}/resolve/main/mask_boundary_ap.py" for _, path in hub.state.requests)
    remote = remote_module.compute(predictions=predictions, references=references)
    assert remote == local and local["segm_AP"] > 0

    # the Space's widget (its app.py, downloaded): a table of JSON cells, one row per image, in; the same numbers out
    pd = pytest.importorskip("pandas")
    pytest.importorskip("gradio", reason="the widget needs gradio")
    app_file = hf_hub_download(SPACE, "app.py", repo_type="space", cache_dir=tmp_path)
    spec = importlib.util.spec_from_file_location("space_app", app_file)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    table = pd.DataFrame({"predictions": [json.dumps(p) for p in predictions] + [""],
                          "references": [json.dumps(r) for r in references] + [""]})
    assert app.compute_table(remote_module, table) == local
    interface = app.widget(remote_module)
    assert interface.title == "Metric: mask_boundary_ap"


def test_the_space_is_named_after_the_script(hub, capsys):
    assert main(["push-metric", "--repo-id", "noisy-seg/boundary-ap"]) == 2
    assert "the Space must be named 'mask_boundary_ap'" in capsys.readouterr().err
    assert hub.state.requests == []


def test_a_missing_token_is_one_line(hub, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN")
    assert main(["push-metric", "--repo-id", SPACE]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no Hugging Face token found" in err
