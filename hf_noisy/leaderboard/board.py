"""The leaderboard store: its benchmarks, submissions (checked, then stored) and results.

Layout (the same in a folder and in the Hub repos, see :mod:`.storage`)::

    store.json                                              {"version": 1, "benchmarks": {name: {"source", "revision"}}}
    submissions/<benchmark>/<trained_on>/<submitter>/<UTC stamp>--<model slug>--<sha256[:16]>/
        results.json.gz                                     the detections (as uploaded if gzip, else gzip-compressed)
        meta.json                                           written last: a submission exists once this exists
    results/<same id>.json                                  one per evaluated submission: "done" with metrics, or "failed"

Every path component comes from a validated field (benchmark and config from fixed lists, the submitter a Hub
user name) or from the time and the content hash, so no submission can land on anybody else's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import HfNoisyError
from .ground_truth import BenchmarkSource, ground_truth_file
from .storage import Backend, LocalBackend, open_backend
from .submission import Limits, SubmissionError, SubmissionMeta, check_results, gzip_bytes, parse_results

__all__ = [
    "STORE_FILE",
    "Submission",
    "init_store",
    "list_results",
    "list_submissions",
    "load_ground_truth",
    "retention",
    "store_benchmarks",
    "submit",
]

STORE_FILE = "store.json"
_STAMP = "%Y%m%dT%H%M%SZ"


def _dumps(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def init_store(store: str | os.PathLike | Backend, benchmarks: dict[str, BenchmarkSource]) -> dict:
    """Create the store (folder or Hub repos) and record where each benchmark's clean validation annotations
    come from. Re-running adds benchmarks or changes their source; returns the store's configuration."""
    backend = open_backend(store)
    backend.create()
    raw = backend.read(STORE_FILE)
    config = json.loads(raw) if raw else {"version": 1, "benchmarks": {}}
    for name, source in benchmarks.items():
        config["benchmarks"][name] = {"source": source.source, "revision": source.revision}
    backend.write({STORE_FILE: _dumps(config)}, "Leaderboard: benchmark sources")
    return config


def store_benchmarks(store: str | os.PathLike | Backend) -> dict[str, BenchmarkSource]:
    """The benchmarks a store accepts, with their annotation sources."""
    backend = open_backend(store)
    raw = backend.read(STORE_FILE)
    if raw is None:
        if isinstance(backend, LocalBackend) and not backend.root.exists():
            raise HfNoisyError(f"{backend.description}: no such folder (a leaderboard store; create one with "
                               "`hf-noisy leaderboard init`)")
        raise HfNoisyError(f"{backend.description} is not a leaderboard store (no {STORE_FILE}); run "
                           "`hf-noisy leaderboard init` first")
    return {name: BenchmarkSource(entry["source"], entry.get("revision"))
            for name, entry in json.loads(raw)["benchmarks"].items()}


def load_ground_truth(store: str | os.PathLike | Backend, benchmark: str, cache_dir: str | os.PathLike | None = None
                      ) -> tuple[dict, os.PathLike]:
    """The benchmark's clean validation annotations (validated COCO dict) and the local file holding them."""
    from ..coco import load_coco

    sources = store_benchmarks(store)
    if benchmark not in sources:
        raise SubmissionError("meta", f"this leaderboard has no benchmark {benchmark!r}; it has "
                              f"{', '.join(sorted(sources)) or 'none yet'}")
    path = ground_truth_file(sources[benchmark], cache_dir)
    return load_coco(path, allow_empty_masks=True), path


@dataclass(frozen=True)
class Submission:
    """A stored submission. ``id`` is its folder under ``submissions/``; ``submitted_at`` is ISO 8601 UTC."""

    id: str
    meta: SubmissionMeta
    sha256: str
    submitted_at: str
    detections: int

    @property
    def results_path(self) -> str:
        return f"submissions/{self.id}/results.json.gz"

    @property
    def result_path(self) -> str:
        return f"results/{self.id}.json"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "model"


def _parse_id(submission_id: str) -> tuple[str, str, str, datetime, str]:
    """``benchmark, trained_on, submitter, time, slug`` of a submission id."""
    benchmark, trained_on, submitter, leaf = submission_id.split("/")
    stamp, slug, _ = leaf.split("--")
    return benchmark, trained_on, submitter, datetime.strptime(stamp, _STAMP).replace(tzinfo=timezone.utc), slug


def _stored_ids(backend: Backend) -> list[str]:
    """Ids of complete submissions (those with ``meta.json``; a crash before it leaves nothing visible)."""
    return [path[len("submissions/"):-len("/meta.json")] for path in backend.list("submissions/")
            if path.endswith("/meta.json")]


def submit(
    store: str | os.PathLike | Backend,
    raw: bytes,
    meta: SubmissionMeta,
    *,
    limits: Limits = Limits(),
    now: datetime | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Submission:
    """Check a submission and store it (pending evaluation). Raises :class:`SubmissionError` and stores
    nothing if any rule fails.

    Checks, cheapest first: the metadata; the store has the benchmark; no earlier submission by this submitter
    of the same model name (compared as a slug: lower case, runs of other characters as one ``-``) for this
    benchmark and config; at most ``limits.per_day`` submissions by this submitter in the 24 hours before
    ``now``; then the file (:func:`parse_results`) and its detections against the ground truth
    (:func:`check_results`).
    """
    from .rules import rules_for

    backend = open_backend(store)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    meta.check(limits)
    sources = store_benchmarks(backend)
    if meta.benchmark not in sources:
        raise SubmissionError("meta", f"this leaderboard has no benchmark {meta.benchmark!r}; it has "
                              f"{', '.join(sorted(sources)) or 'none yet'}")
    slug = _slug(meta.model_name)
    recent = 0
    for submission_id in _stored_ids(backend):
        benchmark, trained_on, submitter, when, other_slug = _parse_id(submission_id)
        if submitter != meta.submitter:
            continue
        if (benchmark, trained_on, other_slug) == (meta.benchmark, meta.trained_on, slug):
            raise SubmissionError("duplicate", f"{meta.submitter} already submitted {meta.model_name!r} for "
                                  f"{meta.benchmark} trained on {meta.trained_on} ({submission_id}); a model "
                                  "name (compared ignoring case and punctuation) is submitted once per benchmark and config")
        recent += now - timedelta(days=1) < when <= now
    if recent >= limits.per_day:
        raise SubmissionError("rate-limit", f"{meta.submitter} has made {recent} submissions in the last 24 hours;"
                              f" the limit is {limits.per_day}")
    results = parse_results(raw, limits)
    gt, _ = load_ground_truth(backend, meta.benchmark, cache_dir)
    check_results(results, gt, max_per_image=rules_for(meta.benchmark).max_per_image)

    data = gzip_bytes(raw) if raw[:2] != b"\x1f\x8b" else raw
    sha = hashlib.sha256(data).hexdigest()
    submission = Submission(
        id=f"{meta.benchmark}/{meta.trained_on}/{meta.submitter}/{now.strftime(_STAMP)}--{slug}--{sha[:16]}",
        meta=meta, sha256=sha, submitted_at=now.isoformat(timespec="seconds"), detections=len(results),
    )
    record = {"format": 1, "meta": meta.to_dict(), "sha256": sha, "submitted_at": submission.submitted_at,
              "detections": submission.detections}
    # Data first, marker last: a crash in between leaves no visible submission (and the Hub writes both in
    # one commit).
    backend.write({submission.results_path: data, f"submissions/{submission.id}/meta.json": _dumps(record)},
                  f"Submission {submission.id}")
    return submission


def list_submissions(store: str | os.PathLike | Backend) -> list[Submission]:
    """Every complete submission, sorted by id."""
    backend = open_backend(store)
    out = []
    for submission_id in _stored_ids(backend):
        record = json.loads(backend.read(f"submissions/{submission_id}/meta.json"))
        out.append(Submission(submission_id, SubmissionMeta.from_dict(record["meta"]), record["sha256"],
                              record["submitted_at"], record["detections"]))
    return out


def list_results(store: str | os.PathLike | Backend) -> dict[str, dict]:
    """``{submission id: result record}`` for every evaluated (or failed) submission."""
    backend = open_backend(store)
    return {path[len("results/"):-len(".json")]: json.loads(backend.read(path))
            for path in backend.list("results/") if path.endswith(".json")}


def retention(result: dict, results: dict[str, dict]) -> dict[str, float] | None:
    """Mask AP and Boundary AP of ``result`` over those of the same submitter's same model name on the same
    benchmark trained on ``clean`` (``None`` when there is no such evaluated result or its AP is 0)."""
    meta = result["meta"]
    for other in results.values():
        other_meta = other["meta"]
        if (other.get("status") == "done" and other_meta["trained_on"] == "clean"
                and (other_meta["benchmark"], other_meta["submitter"], _slug(other_meta["model_name"]))
                == (meta["benchmark"], meta["submitter"], _slug(meta["model_name"]))):
            clean, this = other["metrics"], result["metrics"]
            if clean["segm"]["AP"] <= 0 or clean["boundary"]["AP"] <= 0:
                return None
            return {"AP": this["segm"]["AP"] / clean["segm"]["AP"],
                    "boundary_AP": this["boundary"]["AP"] / clean["boundary"]["AP"]}
    return None
