"""Leaderboard submissions: a corpus of bad submissions, each refused with its reason, storing nothing."""

from __future__ import annotations

import gzip
import json
import pickle
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, shapes_gt, write_gt

from hf_noisy.leaderboard import (Limits, SubmissionError, SubmissionMeta, evaluate_pending, init_store,
                                  list_submissions, parse_benchmark_sources, parse_results, submit)

META = SubmissionMeta(model_name="Mask2Former R50", benchmark="coco-n", trained_on="hard", submitter="alice",
                      method="CE", config_revision="v1.0", paper_url="https://arxiv.org/abs/2406.10891")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> dict:
    return shapes_gt(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="module")
def valid(gt: dict) -> list[dict]:
    return predictions(gt)


@pytest.fixture
def store(tmp_path: Path, gt: dict) -> Path:
    gt_file = write_gt(gt, tmp_path / "val.json")
    init_store(tmp_path / "board", parse_benchmark_sources([f"coco-n={gt_file}"]))
    return tmp_path / "board"


def _files(store: Path) -> list[str]:
    return sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file())


def _with(valid: list[dict], index: int = 0, **changes) -> list[dict]:
    results = [dict(d) for d in valid]
    results[index].update(changes)
    return results


def _corpus(gt: dict, valid: list[dict]) -> list[tuple[str, bytes, SubmissionMeta, Limits, str]]:
    """(kind, file bytes, meta, limits, words the reason must contain)."""
    image = gt["images"][0]
    h, w = image["height"], image["width"]
    good = dumps(valid)
    rle = valid[0]["segmentation"]
    many = [dict(valid[0], score=0.5) for _ in range(101)]
    return [
        ("oversized", good, META, Limits(max_compressed_bytes=1000), "the cap is 1,000"),
        ("oversized", good, META, Limits(max_uncompressed_bytes=1000), "uncompressed; the cap is 1,000"),
        ("gzip-bomb", gzip.compress(b" " * (8 << 20)), META, Limits(max_uncompressed_bytes=1 << 20),
         "decompresses to more than 1,048,576 bytes"),
        ("not-json", gzip.compress(good)[:-20], META, Limits(), "truncated gzip"),
        ("too-deep", b"[" * 5000 + b"]" * 5000, META, Limits(), "nested more than 8 levels deep"),
        ("schema", json.dumps({"annotations": valid}).encode(), META, Limits(), "JSON list of detections"),
        ("schema", dumps([{k: v for k, v in valid[0].items() if k != "score"}]), META, Limits(), "missing field(s) score"),
        ("schema", dumps(_with(valid, extra=1)), META, Limits(), "unknown field(s) 'extra'"),
        ("score", good.replace(b'"score": %s' % str(valid[3]["score"]).encode(), b'"score": NaN', 1), META, Limits(),
         "detection #3: score nan must be a finite number in [0, 1]"),
        ("score", dumps(_with(valid, 2, score=1.5)), META, Limits(), "score 1.5 must be a finite number in [0, 1]"),
        ("score", dumps(_with(valid, 2, score=-0.1)), META, Limits(), "score -0.1"),
        ("unknown-image", dumps(_with(valid, 1, image_id=987654321)), META, Limits(), "image_id 987654321"),
        ("unknown-category", dumps(_with(valid, 1, category_id=1000)), META, Limits(), "category_id 1000"),
        ("rle-size", dumps(_with(valid, 0, segmentation={"size": [h + 1, w], "counts": rle["counts"]})), META,
         Limits(), f"RLE size [{h + 1}, {w}] does not match"),
        ("rle-corrupt", dumps(_with(valid, 0, segmentation={"size": [h, w], "counts": rle["counts"][:-3] + "zz"})),
         META, Limits(), "invalid RLE"),
        ("too-many-detections", dumps(many), META, Limits(), "more than 100 detections"),
        ("polygon", dumps(_with(valid, 1, segmentation=[[0, 0, w + 5, 0, w, h]])), META, Limits(),
         f"detection #1: polygon x = {w + 5} is outside the image (0 to {w}, within 1 pixel)"),
        ("polygon", dumps(_with(valid, 2, segmentation=[[1, 1] * 50])), META, Limits(max_polygon_vertices=49),
         "detection #2: more than 49 polygon vertices"),
        ("not-json", pickle.dumps(valid), META, Limits(), "Python pickle"),
        ("not-json", b"!!python/object/apply:os.system ['touch pwned']\n", META, Limits(), "looks like YAML"),
        ("not-json", b"- image_id: 1\n  score: !!float 0.5\n", META, Limits(), "not JSON"),
        ("not-json", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, META, Limits(), "not JSON"),
        ("control-character", b'[{"image_id": 1,\x01 "score": 1}]', META, Limits(), "control character U+0001"),
        ("name", good, replace(META, model_name="../../etc/passwd"), Limits(), "path separator or '..'"),
        ("name", good, replace(META, model_name="evil\x00name"), Limits(), "U+0000 is a control character"),
        ("name", good, replace(META, model_name="x" * 101), Limits(), "101 characters, at most 100"),
        ("name", good, replace(META, submitter="alice/../bob"), Limits(), "is not a Hub user name"),
        ("meta", good, replace(META, benchmark="imagenet"), Limits(), "not one of coco-n"),
        ("meta", good, replace(META, benchmark="lvis-n"), Limits(), "no benchmark 'lvis-n'"),
        ("meta", good, replace(META, trained_on="extreme"), Limits(), "'extreme' is not one of clean"),
        ("meta", good, replace(META, paper_url="javascript:alert(1)"), Limits(), "http(s) URL"),
    ]


def test_the_corpus_covers_at_least_15_kinds(gt: dict, valid: list[dict]):
    corpus = _corpus(gt, valid)
    # "duplicate" and "rate-limit" need earlier submissions: test_duplicate_and_rate_limit.
    assert len({kind for kind, *_ in corpus} | {"duplicate", "rate-limit"}) >= 15 and len(corpus) >= 25


#: Refused in the submitting process (before the sandbox); every other kind is the sandbox child's.
_PARENT_KINDS = {"name", "meta"}
#: Kinds also sent through submit() and its sandbox child (one child each: a second or so apiece).
_THROUGH_THE_SANDBOX = {"gzip-bomb", "too-deep", "score", "rle-corrupt", "not-json"}


def _streamed(raw: bytes, gt: dict, limits: Limits, folder: Path) -> int:
    """What the sandbox child does with a file, in this process: stream it through iter_upload (decompressing a
    gzip upload into a file) and check that file batch by batch."""
    from hf_noisy.leaderboard.submission import check_results_file, iter_upload

    upload, plain = folder / "upload", folder / "plain.json"
    upload.write_bytes(raw)
    with open(upload, "rb") as source, open(plain, "wb") as out:
        for chunk in iter_upload(source, limits.for_benchmark("coco-n")):
            out.write(chunk)
    return check_results_file(plain, gt, max_per_image=100, limits=limits)


@pytest.mark.slow
def test_every_bad_submission_is_refused_with_its_reason_and_nothing_is_stored(store: Path, gt: dict,
                                                                              valid: list[dict], tmp_path: Path):
    """Each file-level case is checked with both checks: the whole file in memory (parse_results,
    check_results) and the streamed one the sandbox child runs (iter_upload, check_results_file); one case of
    most kinds also goes end to end through submit() and the child."""
    from hf_noisy.leaderboard import check_results

    before = _files(store)
    sent = set()
    for kind, raw, meta, limits, words in _corpus(gt, valid):
        if kind not in _PARENT_KINDS and not (kind == "oversized" and limits.max_compressed_bytes is not None
                                              and limits.max_compressed_bytes < len(raw)):
            for check in (lambda: check_results(parse_results(raw, limits), gt, max_per_image=100, limits=limits),
                          lambda: _streamed(raw, gt, limits, tmp_path)):
                with pytest.raises(SubmissionError) as caught:
                    check()
                assert (caught.value.kind, words in str(caught.value)) == (kind, True), (kind, str(caught.value))
        if kind in _PARENT_KINDS or kind == "oversized" or (kind in _THROUGH_THE_SANDBOX and kind not in sent):
            sent.add(kind)
            with pytest.raises(SubmissionError) as caught:
                submit(store, raw, meta, limits=replace(limits, attempts_per_day=1000), now=NOW)
            assert (caught.value.kind, words in str(caught.value)) == (kind, True), (kind, str(caught.value))
    assert sent >= _THROUGH_THE_SANDBOX
    # Only the log of uploads that reached the file check (they count toward the attempt limit).
    assert [f for f in _files(store) if not f.startswith(("attempts/alice/", ".lock-"))] == before == ["store.json"]
    assert evaluate_pending(store) == [] and not (store / "results").exists()


@pytest.mark.slow
def test_duplicate_and_rate_limit(store: Path, valid: list[dict]):
    raw = dumps(valid)
    first = submit(store, raw, META, now=NOW)
    # Case and Unicode compatibility forms (here fullwidth letters) do not make another name.
    for name in ("MASK2FORMER R50", "\uff2dask2former R50"):
        with pytest.raises(SubmissionError, match="already submitted 'MASK2FORMER R50|Mask2former R50' for coco-n "
                           "trained on hard") as caught:
            submit(store, gzip.compress(raw), replace(META, model_name=name), now=NOW + timedelta(hours=1))
        assert caught.value.kind == "duplicate"
    # Another config, another submitter or another name is fine.
    submit(store, raw, replace(META, trained_on="clean"), now=NOW + timedelta(minutes=1))
    submit(store, raw, replace(META, submitter="bob"), now=NOW + timedelta(minutes=2))
    limits = Limits(per_day=3)
    submit(store, raw, replace(META, model_name="M2F SCE"), limits=limits, now=NOW + timedelta(minutes=3))
    with pytest.raises(SubmissionError, match="3 submissions in the last 24 hours; the limit is 3") as caught:
        submit(store, raw, replace(META, model_name="M2F GCE"), limits=limits, now=NOW + timedelta(minutes=4))
    assert caught.value.kind == "rate-limit"
    # A day later the window has moved on.
    submit(store, raw, replace(META, model_name="M2F GCE"), limits=limits, now=NOW + timedelta(days=1, minutes=1))
    stored = list_submissions(store)
    assert len(stored) == 5 and first in stored
    assert {s.meta.submitter for s in stored} == {"alice", "bob"}


def test_paths_come_from_validated_fields_and_the_content_hash(store: Path, valid: list[dict]):
    submission = submit(store, dumps(valid), replace(META, model_name="Mask2Former R50 (SCE, 2x)"), now=NOW)
    folder = store / "submissions" / submission.id
    assert submission.id.startswith("coco-n/hard/alice/20261125T120000Z--mask2former-r50-sce-2x-")
    assert submission.id.endswith(submission.sha256[:16])
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "results.json.gz"]
    stored = json.loads(gzip.decompress((folder / "results.json.gz").read_bytes()))
    assert stored == valid and json.loads((folder / "meta.json").read_text())["meta"]["model_name"] == \
        "Mask2Former R50 (SCE, 2x)"


def test_gzip_and_plain_parse_the_same(valid: list[dict]):
    raw = dumps(valid)
    assert parse_results(gzip.compress(raw)) == parse_results(raw) == valid


def test_the_streamed_check_counts_every_detection_in_small_batches(gt: dict, valid: list[dict], tmp_path: Path,
                                                                    monkeypatch):
    """Batches of a few detections (1 KiB blocks): the per-image cap and the messages count across them."""
    from hf_noisy.metrics import stream

    monkeypatch.setattr(stream, "BLOCK_BYTES", 1024)
    assert _streamed(gzip.compress(dumps(valid)), gt, Limits(), tmp_path) == len(valid)
    image = valid[0]["image_id"]
    many = [dict(valid[0], score=0.5) for _ in range(101)]
    with pytest.raises(SubmissionError, match=f"image {image} has more than 100 detections"):
        _streamed(dumps(many), gt, Limits(), tmp_path)
    late = [dict(d) for d in valid] * 3
    late[-1] = dict(late[-1], score=2.0)
    with pytest.raises(SubmissionError, match=f"detection #{len(late) - 1}: score 2.0 must be"):
        _streamed(dumps(late), gt, Limits(), tmp_path)


def test_streamed_gzip_is_the_stored_gzip(valid: list[dict]):
    """A plain upload is stored as gzip_bytes of it; the sandbox compresses it a chunk at a time."""
    import io

    from hf_noisy.leaderboard.submission import gzip_bytes, gzip_chunks

    raw = dumps(valid) * 50
    out = io.BytesIO()
    gzip_chunks((raw[i:i + 4096] for i in range(0, len(raw), 4096)), out)
    assert out.getvalue() == gzip_bytes(raw) and gzip.decompress(out.getvalue()) == raw


def test_a_crash_before_the_marker_leaves_no_submission(store: Path, valid: list[dict]):
    # What a crash between the two writes of submit() leaves: data without meta.json. It is invisible.
    orphan = store / "submissions" / "coco-n" / "hard" / "alice" / "20261125T120000Z--m--0123456789abcdef"
    orphan.mkdir(parents=True)
    (orphan / "results.json.gz").write_bytes(gzip.compress(dumps(valid)))
    assert list_submissions(store) == [] and evaluate_pending(store) == []
    submit(store, dumps(valid), META, now=NOW)  # and it does not block the real submission
    assert len(list_submissions(store)) == 1


def test_depth_ignores_brackets_inside_strings():
    from hf_noisy.leaderboard.submission import _max_depth

    assert _max_depth(rb'["a\"[[[{", [1, {"b": "]]]\\"}], "\\\\"]', 8) == 3
    assert _max_depth(b"[]", 8) == 1 and _max_depth(b"", 8) == 0
    assert _max_depth(b"[" * 100, 8) == 9  # counting stops past the limit
