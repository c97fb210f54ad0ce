"""The check reads an upload as a stream in constant memory and writes nothing (issue 23, D): caps on the
decompressed size, on the decompressed/compressed ratio and on whitespace runs stop padded gzip bombs early, and
a valid gzip upload is checked without a decompressed copy on disk."""

from __future__ import annotations

import gzip
import io
import json
import tempfile
import time
import zlib

import pytest
from _leaderboard import dumps, predictions, shapes_gt

from hf_noisy.leaderboard import Limits, SubmissionError
from hf_noisy.leaderboard.submission import check_results_file, iter_upload


def _padded(detections: list[dict], spaces: int) -> bytes:
    """gzip of a valid results list followed by ``spaces`` spaces (made in 1 MiB pieces): the red team's
    padded LVIS-N upload, scaled."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    body = [packer.compress(dumps(detections))]
    block = b" " * (1 << 20)
    body += [packer.compress(block[: min(len(block), spaces - k)]) for k in range(0, spaces, len(block))]
    return b"".join([*body, packer.flush()])


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> dict:
    return shapes_gt(tmp_path_factory.mktemp("stream-check") / "shapes", num_val=120)


def _check(raw: bytes, gt: dict, limits: Limits = Limits()) -> int:
    caps = limits.for_benchmark("coco-n")
    return check_results_file("upload", gt, max_per_image=100, limits=caps, blocks=iter_upload(io.BytesIO(raw), caps))


@pytest.mark.slow
def test_padding_is_refused_after_a_few_mib_not_gigabytes(gt: dict):
    """20 valid detections and 256 MiB of spaces (a 260 KB gzip): refused by the whitespace-run cap after 4 MiB,
    and, with that cap lifted, by the ratio cap (past 16 MiB plus 50x the bytes read); each in well under a
    second of CPU, long before the 1 GiB uncompressed cap."""
    raw = _padded(predictions(gt, limit=20), 256 << 20)
    assert len(raw) < 1 << 20
    for limits, kind, words in ((Limits(), "padding", "bytes of whitespace in a row"),
                                (Limits(max_blank_run=1 << 40), "gzip-bomb", "over 50 times")):
        start = time.process_time()
        with pytest.raises(SubmissionError) as caught:
            _check(raw, gt, limits)
        assert caught.value.kind == kind and words in str(caught.value)
        assert time.process_time() - start < 2.0


def test_a_whitespace_run_is_capped_even_where_the_ratio_allows_it(gt: dict):
    text = dumps(predictions(gt, limit=3))
    padded = text[:-1] + b" " * (5 << 20) + b"]"
    for raw in (padded, gzip.compress(padded)):
        with pytest.raises(SubmissionError) as caught:
            _check(raw, gt, Limits(max_ratio=10_000))
        assert caught.value.kind == "padding"
    assert _check(text[:-1] + b" " * (1 << 20) + b"]", gt) == 3  # a long run under the cap is fine


def test_a_valid_gzip_upload_is_checked_without_any_temporary_file(gt: dict, monkeypatch):
    """The streamed check of a gzip upload: every detection counted, every rule applied, nothing written."""
    detections = predictions(gt) * 8  # at most 100 per image still
    text = json.dumps(detections, indent=1).encode()
    assert len(text) > 2 << 20  # several of the 1 MiB blocks it is read in
    raw = gzip.compress(text)

    def no_temporary_files(*args, **kwargs):
        raise AssertionError("the streamed check opened a temporary file")

    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_temporary_files)
    assert _check(raw, gt) == len(detections)
    bad = gzip.compress(dumps([*detections[:5000], dict(detections[0], score=2.0)]))
    with pytest.raises(SubmissionError) as caught:
        _check(bad, gt)
    assert caught.value.kind == "score" and f"detection #{min(5000, len(detections))}" in str(caught.value)
