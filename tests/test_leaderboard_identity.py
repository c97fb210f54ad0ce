"""Identity that survives Unicode: normalised names, refused invisible and unencodable ones, confusables by
TR39 skeleton, collision-free ASCII paths, retention by identity, case-insensitive submitters."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, shapes_gt, write_gt

from hf_noisy.leaderboard import (SubmissionError, SubmissionMeta, init_store, list_submissions,
                                  parse_benchmark_sources, retention, submit)
from hf_noisy.leaderboard.identity import InvalidName, clean_name, identity, name_key, skeleton

META = SubmissionMeta("M2F R50", "coco-n", "hard", "alice")


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> dict:
    return shapes_gt(tmp_path_factory.mktemp("shapes"), num_val=2)


@pytest.fixture
def store(tmp_path: Path, gt: dict) -> Path:
    init_store(tmp_path / "board", parse_benchmark_sources([f"coco-n={write_gt(gt, tmp_path / 'val.json')}"]))
    return tmp_path / "board"


@pytest.mark.parametrize("name, words", [
    ("\ud800", "U+D800 is a surrogate"),
    ("\u3164", "U+3164 is invisible"),
    ("M2F\u3164R50", "U+3164 is invisible"),
    ("M2F\u200bR50", "U+200B is a format character"),
    ("M2F\u202eR50", "U+202E is a format character"),
    ("M2F\ue000", "U+E000 is private-use"),
    ("M2F\u0378", "U+0378 is unassigned"),
    ("M2F\u00a0R50", "U+00A0 is a space other than U+0020"),
    ("M2F\ufe0f", "U+FE0F is invisible"),
    ("M2F  R50", "repeated spaces"),
])
def test_names_with_characters_that_cannot_be_shown_honestly_are_refused(name: str, words: str):
    with pytest.raises(InvalidName, match=re.escape(words)):
        clean_name("model_name", name)


def test_names_are_nfkc_normalised_and_identity_is_case_folded():
    assert clean_name("model_name", "\uff2d2F \ufb01ne") == "M2F fine"
    assert identity("Mask2Former") == identity("MASK2FORMER") == identity("\uff2dask2former")
    assert identity("Stra\u00dfe") == identity("STRASSE")
    assert identity("\u6a21\u578b\u4e00") != identity("\u7f51\u7edc")  # 模型一 vs 网络


def test_path_keys_are_ascii_and_collision_free():
    cjk = [name_key(name) for name in ("\u6a21\u578b\u4e00", "\u7f51\u7edc")]  # both slug to "model"
    assert all(key.isascii() and key.startswith("model-") for key in cjk) and cjk[0] != cjk[1]
    assert name_key("M2F R50") == name_key("m2f r50") != name_key("M2F-R50")


def test_skeletons_find_confusables():
    assert skeleton("\u041c2F R50") == skeleton("M2F R50")  # Cyrillic EM
    assert skeleton("paypaI") == skeleton("paypal") and skeleton("\u03c1aypal") == skeleton("paypal")
    assert skeleton("rn") == skeleton("m")
    assert skeleton("M2F R50") != skeleton("M2F R101")


def test_a_lone_surrogate_name_is_refused_and_nothing_is_stored(store: Path, gt: dict):
    with pytest.raises(SubmissionError, match="U\\+D800 is a surrogate") as caught:
        submit(store, dumps(predictions(gt)), replace(META, model_name="\ud800"))
    assert caught.value.kind == "name" and list_submissions(store) == []
    assert not (store / "attempts").exists()  # refused before the upload was even looked at


def test_cjk_names_are_two_names_and_retention_keeps_them_apart(store: Path, gt: dict):
    raw = dumps(predictions(gt))
    first = submit(store, raw, replace(META, model_name="\u6a21\u578b\u4e00", trained_on="clean"))
    second = submit(store, raw, replace(META, model_name="\u7f51\u7edc", trained_on="clean"))
    assert first.id.split("--")[1] != second.id.split("--")[1]
    assert len(list_submissions(store)) == 2
    clean = {"status": "done", "meta": first.meta.to_dict(),
             "metrics": {"segm": {"AP": 0.5}, "boundary": {"AP": 0.4}}}
    noisy = {"status": "done", "meta": replace(second.meta, trained_on="hard").to_dict(),
             "metrics": {"segm": {"AP": 0.25}, "boundary": {"AP": 0.2}}}
    assert retention(noisy, {"a": clean}) is None  # 网络 has no clean result of its own
    same = dict(noisy, meta=replace(first.meta, trained_on="hard", model_name="\u6a21\u578b\u4e00").to_dict())
    assert retention(same, {"a": clean}) == {"AP": 0.5, "boundary_AP": 0.5}


def test_a_confusable_name_is_refused_next_to_the_name_it_imitates(store: Path, gt: dict):
    raw = dumps(predictions(gt))
    submit(store, raw, META)
    for name, submitter in (("\u041c2F R50", "alice"), ("\u041c2F R50", "mallory"), ("M2F R5O", "mallory")):
        with pytest.raises(SubmissionError, match="looks the same as the existing model name 'M2F R50'") as caught:
            submit(store, raw, replace(META, model_name=name, submitter=submitter, trained_on="clean"))
        assert caught.value.kind == "confusable"
    # The same name by another submitter is not a confusable, and neither is a name that looks different.
    submit(store, raw, replace(META, submitter="bob"))
    submit(store, raw, replace(META, model_name="M2F R101"))
    index = {json.loads(p.read_text())["identity"] for p in (store / "names").iterdir()}
    assert index == {"m2f r50", "m2f r101"}


def test_submitters_are_case_insensitive(store: Path, gt: dict):
    raw = dumps(predictions(gt))
    submit(store, raw, replace(META, submitter="alice"))
    for submitter in ("Alice", "ALICE"):
        with pytest.raises(SubmissionError, match="already submitted") as caught:
            submit(store, raw, replace(META, submitter=submitter))
        assert caught.value.kind == "duplicate"
    assert [s.id.split("/")[2] for s in list_submissions(store)] == ["alice"]


def test_the_apps_api_refuses_a_lone_surrogate_sent_as_a_json_escape(store: Path, gt: dict, tmp_path: Path,
                                                                   free_port):
    pytest.importorskip("gradio", reason="the leaderboard extra (gradio) is not installed")
    import httpx

    from hf_noisy.leaderboard.app import build_app

    upload = tmp_path / "results.json"
    upload.write_bytes(dumps(predictions(gt)))
    port = free_port()
    base = f"http://127.0.0.1:{port}/gradio_api"
    demo = build_app(store, submitter="alice", evaluate=False)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with upload.open("rb") as handle:
            (path,) = httpx.post(f"{base}/upload", files={"files": ("results.json", handle)}).json()
        form = ["", {"path": path, "meta": {"_type": "gradio.FileData"}}, "coco-n", "hard", "\ud800", "", "", "", ""]
        body = json.dumps({"data": form})  # ASCII, with the lone surrogate as the escape \ud800
        assert "\\ud800" in body
        event = httpx.post(f"{base}/call/handler", content=body.encode("ascii"),
                           headers={"Content-Type": "application/json"}).json()["event_id"]
        stream = httpx.get(f"{base}/call/handler/{event}", timeout=120).text
    finally:
        demo.close()
    lines = stream.splitlines()
    status = json.loads(lines[lines.index("event: complete") + 1][len("data: "):])[0]
    assert status.startswith("**Rejected** (name)") and "U+D800 is a surrogate" in status
    assert list_submissions(store) == []
