"""The leaderboard store: its benchmarks, submissions (checked, then stored) and results.

Layout (the same in a folder and in the Hub repos, see :mod:`.storage`)::

    store.json                                              {"version": 1, "benchmarks": {name: {"source", "revision", "version"}}}
    submissions/<benchmark>/<trained_on>/<submitter, lower case>/<UTC stamp>--<name key>--<sha256[:16]>/
        results.json.gz                                     a direct upload's detections (as uploaded if gzip, else
                                                            gzip-compressed); none for a Hub-hosted file
        meta.json                                           written last: a submission exists once this exists (a
                                                            Hub-hosted one's "hosted" reference is here)
    names/<skeleton key>.json                               which model name owns a look (TR39 skeleton), see .identity
    attempts/<submitter>/<UTC stamp>--<token>.json          one per upload that reached the file check
    claims/<same id>.json                                   an evaluator scoring it, until when (see .evaluator)
    results/<same id>.json                                  one per evaluated submission: "done" with metrics, or "failed"

The name key is a slug of the model name plus a hash of its identity (:func:`~.identity.name_key`), so the path
is ASCII and two different names never share it.

Every path component comes from a validated field (benchmark and config from fixed lists, the submitter a Hub
user name) or from the time and the content hash, so no submission can land on anybody else's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import HfNoisyError
from .hosted import HostedFile
from .ground_truth import BenchmarkSource, ground_truth_file, resolve_source
from .identity import identity, name_key, skeleton_key, submitter_key
from .policy import Limits, SandboxLimits
from .storage import Backend, Decision, LocalBackend, Snapshot, open_backend
from .submission import SubmissionError, SubmissionMeta

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


def _local_root(backend: Backend) -> Path | None:
    """The folder of a local store (relative benchmark paths are relative to it); ``None`` for the Hub."""
    root = getattr(backend, "root", None)
    return None if root is None else Path(root)


def init_store(store: str | os.PathLike | Backend, benchmarks: dict[str, BenchmarkSource]) -> dict:
    """Create the store (folder or Hub repos) and record where each benchmark's clean validation annotations
    come from and which benchmark version they are (:func:`~.ground_truth.resolve_source`: a local path is
    recorded absolute, or relative to a local store holding it, and must hold a built benchmark). Every source is
    checked before anything is written. Re-running adds benchmarks or changes their source; returns the store's
    configuration."""
    backend = open_backend(store)
    root = _local_root(backend)
    resolved = {name: resolve_source(name, source, root) for name, source in benchmarks.items()}
    backend.create()
    raw = backend.read(STORE_FILE)
    config = json.loads(raw) if raw else {"version": 1, "benchmarks": {}}
    for name, source in resolved.items():
        config["benchmarks"][name] = {"source": source.source, "revision": source.revision, "version": source.version}
    backend.write({STORE_FILE: _dumps(config)}, "Leaderboard: benchmark sources")
    return config


def store_benchmarks(store: str | os.PathLike | Backend) -> dict[str, BenchmarkSource]:
    """The benchmarks a store accepts, with their annotation sources (a path relative to a local store made
    absolute) and the benchmark versions ``init`` found (``None`` in a store made before versions were
    recorded)."""
    backend = open_backend(store)
    raw = backend.read(STORE_FILE)
    if raw is None:
        if isinstance(backend, LocalBackend) and not backend.root.exists():
            raise HfNoisyError(f"{backend.description}: no such folder (a leaderboard store; create one with "
                               "`hf-noisy leaderboard init`)")
        raise HfNoisyError(f"{backend.description} is not a leaderboard store (no {STORE_FILE}); run "
                           "`hf-noisy leaderboard init` first")
    root = _local_root(backend)
    out = {}
    for name, entry in json.loads(raw)["benchmarks"].items():
        source = entry["source"]
        if root is not None and not Path(source).is_absolute() and (root / source).exists():
            source = str((root / source).resolve())
        out[name] = BenchmarkSource(source, entry.get("revision"), entry.get("version"))
    return out


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
    """A stored submission. ``id`` is its folder under ``submissions/``; ``submitted_at`` is ISO 8601 UTC;
    ``detections``: how many the submit's check read, all of them when ``complete`` (else the check's budget
    ran out first, and the evaluator checks the rest before it scores)."""

    id: str
    meta: SubmissionMeta
    sha256: str
    submitted_at: str
    detections: int
    complete: bool = True
    #: A Hub-hosted submission's file (:class:`~.hosted.HostedFile` as text); ``None``: stored in the store.
    hosted: str | None = None

    @property
    def results_path(self) -> str:
        return f"submissions/{self.id}/results.json.gz"

    @property
    def result_path(self) -> str:
        return f"results/{self.id}.json"


def _parse_id(submission_id: str) -> tuple[str, str, str, datetime, str]:
    """``benchmark, trained_on, submitter, time, name key`` of a submission id."""
    benchmark, trained_on, submitter, leaf = submission_id.split("/")
    stamp, key, _ = leaf.split("--")
    return benchmark, trained_on, submitter, datetime.strptime(stamp, _STAMP).replace(tzinfo=timezone.utc), key


def _stored_ids(backend: Backend | Snapshot) -> list[str]:
    """Ids of complete submissions (those with ``meta.json``; a crash before it leaves nothing visible)."""
    return [path[len("submissions/"):-len("/meta.json")] for path in backend.list("submissions/")
            if path.endswith("/meta.json")]


def _stamp_of(path: str) -> datetime:
    return datetime.strptime(path.rsplit("/", 1)[-1].split("--")[0], _STAMP).replace(tzinfo=timezone.utc)


def _within_a_day(when: datetime, now: datetime) -> bool:
    """Whether ``when`` falls in the 24 hours before ``now``, or after it: a concurrent upload that started
    later (a later stamp) but was stored first counts too."""
    return now - timedelta(days=1) < when


def _name_files(meta: SubmissionMeta) -> dict[str, bytes]:
    """The name index entries of ``meta.model_name``: one file per skeleton (of the name as written and of its
    case-folded identity), holding the identity that owns that look."""
    record = _dumps({"identity": identity(meta.model_name), "model_name": meta.model_name})
    return {f"names/{skeleton_key(name)}.json": record for name in (meta.model_name, identity(meta.model_name))}


def _check_rules(view: Backend | Snapshot, meta: SubmissionMeta, now: datetime, limits: Limits) -> dict[str, bytes]:
    """The store-wide rules for a new submission, on one consistent view: raises :class:`SubmissionError`
    (``"confusable"``, ``"duplicate"``, ``"rate-limit"``); returns the name index files to add."""
    names = {}
    for path, record in _name_files(meta).items():
        raw = view.read(path)
        if raw is None:
            names[path] = record
        elif json.loads(raw)["identity"] != identity(meta.model_name):
            other = json.loads(raw).get("model_name", "?")
            raise SubmissionError("confusable", f"meta 'model_name': {meta.model_name!r} looks the same as the "
                                  f"existing model name {other!r} (Unicode TR39 skeleton) but is a different "
                                  "name; use that name exactly, or one that looks different")
    key, submitter, recent = name_key(meta.model_name), submitter_key(meta.submitter), 0
    for submission_id in _stored_ids(view):
        benchmark, trained_on, other_submitter, when, other_key = _parse_id(submission_id)
        if submitter_key(other_submitter) != submitter:
            continue
        if (benchmark, trained_on, other_key) == (meta.benchmark, meta.trained_on, key):
            raise SubmissionError("duplicate", f"{meta.submitter} already submitted {meta.model_name!r} for "
                                  f"{meta.benchmark} trained on {meta.trained_on} ({submission_id}); a model "
                                  "name (compared ignoring case and Unicode compatibility forms) is submitted "
                                  "once per benchmark and config")
        recent += _within_a_day(when, now)
    if recent >= limits.per_day:
        raise SubmissionError("rate-limit", f"{meta.submitter} has made {recent} submissions in the last 24 hours;"
                              f" the limit is {limits.per_day}")
    return names


def _reserve_attempt(view: Backend | Snapshot, meta: SubmissionMeta, now: datetime, limits: Limits
                     ) -> Decision:
    """Check the rules, then count this upload against the submitter's attempt limit (refused uploads
    included): the attempt record is written before any byte of the upload is looked at."""
    _check_rules(view, meta, now, limits)
    folder = f"attempts/{submitter_key(meta.submitter)}/"
    attempts = sum(_within_a_day(_stamp_of(path), now) for path in view.list(folder))
    if attempts >= limits.attempts_per_day:
        raise SubmissionError("attempt-limit", f"{meta.submitter} has uploaded {attempts} files in the last 24 "
                              f"hours, refused ones included; the limit is {limits.attempts_per_day}")
    # Unique without a random draw: this machine, process and moment.
    token = hashlib.sha256(f"{socket.gethostname()}/{os.getpid()}/{time.time_ns()}".encode()).hexdigest()[:16]
    path = f"{folder}{now.strftime(_STAMP)}--{token}.json"
    return {path: _dumps({"meta": meta.to_dict(), "at": now.isoformat(timespec="seconds")})}, path


def _sha256(blob: bytes | Path) -> str:
    digest = hashlib.sha256()
    if isinstance(blob, bytes):
        digest.update(blob)
    else:
        with open(blob, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _check_hosted(hosted: HostedFile, gt_path: os.PathLike, benchmark: str, sandbox: SandboxLimits | None,
                  limits: Limits) -> tuple[dict, str]:
    """Check a Hub file as it streams from the Hub through a pipe into the sandbox (nothing on disk); the
    check's answer and the whole file's sha256 (the rest of the file is read and hashed, not kept, when the
    check stopped early). Raises :class:`SubmissionError` when the Hub refuses the file or sends too much."""
    import threading

    from .hosted import stream_hosted
    from .sandbox import check_upload

    read_end, write_end = os.pipe()
    digest, failure = hashlib.sha256(), []

    def feed() -> None:
        reader_gone = False
        try:
            for chunk in stream_hosted(hosted, limits.max_compressed_bytes):
                digest.update(chunk)
                view = memoryview(chunk)
                while view and not reader_gone:
                    try:
                        view = view[os.write(write_end, view):]
                    except BrokenPipeError:  # the check is done with it: hash the rest
                        reader_gone = True
        except BaseException as err:  # noqa: BLE001 -- handed to the submitting thread
            failure.append(err)
        finally:
            os.close(write_end)

    feeder = threading.Thread(target=feed, name="hub-file", daemon=True)
    feeder.start()
    try:
        answer = check_upload(Path(f"/proc/self/fd/{read_end}"), gt_path, benchmark, sandbox, caps=limits)
    finally:
        os.close(read_end)
        feeder.join()
    if failure:
        raise failure[0]
    return answer, digest.hexdigest()


def submit(
    store: str | os.PathLike | Backend,
    upload: bytes | str | os.PathLike | HostedFile,
    meta: SubmissionMeta,
    *,
    limits: Limits = Limits(),
    now: datetime | None = None,
    cache_dir: str | os.PathLike | None = None,
    sandbox: SandboxLimits | None = None,
) -> Submission:
    """Check a submission (a results file on the Hub, :class:`~.hosted.HostedFile`; or the file's bytes, or its
    path) and store it (pending evaluation). Raises :class:`SubmissionError` and stores no submission if any
    rule fails.

    In this process, cheapest first: the metadata (names NFKC-normalised, see :mod:`.identity`); the store has
    the benchmark; a Hub file is in the submitter's own repo; the file's size (a Hub file's from the Hub API,
    before any byte is fetched) against the benchmark's cap (``limits``' size caps, where ``None``: the
    benchmark's, :meth:`~.policy.Limits.for_benchmark`); the store-wide rules -- no model name that looks like another one
    (TR39 skeleton), no earlier submission of the same model name (its :func:`~.identity.identity`) by this
    submitter (compared case-insensitively) for this benchmark and config, at most ``limits.per_day``
    submissions in the 24 hours before ``now``, and at most ``limits.attempts_per_day`` uploads, refused ones
    included (each upload that gets this far is recorded under ``attempts/`` first). Then the file (a Hub file
    streamed from the Hub through a pipe, with the cap counted as it arrives: nothing on disk), in the sandbox (:func:`~.sandbox.check_upload`: streamed decompression, parsing and every check
    of :func:`parse_results` and :func:`check_results`, under ``sandbox``'s budgets, default the benchmark's
    check budget, :func:`~.policy.check_limits`: a file it cannot check in full is stored with
    ``complete=False`` and checked in full by the evaluator); this process only hands it the file and stores
    what it wrote, neither ever whole in memory. A Hub file is stored as its reference (``hosted``), never
    its bytes. Last, the rules again and the write, as one :meth:`~.storage.Backend.transact`, so concurrent
    submitters (processes or replicas) cannot both pass them.
    """
    import tempfile

    from .hosted import hosted_size
    from .sandbox import check_upload

    if isinstance(upload, bytearray):
        upload = bytes(upload)
    elif not isinstance(upload, (bytes, str, os.PathLike, HostedFile)):
        raise TypeError(f"upload must be a HostedFile, bytes or a path, got {type(upload).__name__}")
    backend = open_backend(store)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    meta = meta.normalised(limits)
    limits = limits.for_benchmark(meta.benchmark)
    sources = store_benchmarks(backend)
    if meta.benchmark not in sources:
        raise SubmissionError("meta", f"this leaderboard has no benchmark {meta.benchmark!r}; it has "
                              f"{', '.join(sorted(sources)) or 'none yet'}")
    hosted = upload if isinstance(upload, HostedFile) else None
    if hosted is not None and submitter_key(hosted.owner) != submitter_key(meta.submitter):
        raise SubmissionError("reference", f"{hosted}: not a repo of {meta.submitter} (submit a file from your "
                              "own repo)")
    size = (hosted_size(hosted) if hosted is not None else len(upload) if isinstance(upload, bytes)
            else os.path.getsize(upload))
    if size > limits.max_compressed_bytes:
        raise SubmissionError("oversized", f"{size:,} bytes; the cap is {limits.max_compressed_bytes:,}")
    gt_path = ground_truth_file(sources[meta.benchmark], cache_dir)
    backend.transact("submissions", lambda view: _reserve_attempt(view, meta, now, limits),
                     f"Upload by {meta.submitter}")
    # An unnamed (O_TMPFILE) temporary file: nothing is left behind by a crash or a kill.
    with tempfile.TemporaryFile() as packed:
        if hosted is not None:
            answer, sha = _check_hosted(hosted, gt_path, meta.benchmark, sandbox, limits)
        else:
            answer = check_upload(upload, gt_path, meta.benchmark, sandbox, caps=limits, packed=packed)
        if "error" in answer:
            raise SubmissionError(answer["error"], answer["reason"])
        packed.seek(0, os.SEEK_END)
        data = Path(f"/proc/self/fd/{packed.fileno()}") if packed.tell() else upload
        if isinstance(data, (str, os.PathLike)):
            data = Path(data)
        if hosted is None:
            sha = _sha256(data)
        submission = Submission(
            id=f"{meta.benchmark}/{meta.trained_on}/{submitter_key(meta.submitter)}/{now.strftime(_STAMP)}--"
               f"{name_key(meta.model_name)}--{sha[:16]}",
            meta=meta, sha256=sha, submitted_at=now.isoformat(timespec="seconds"), detections=answer["detections"],
            complete=answer["complete"], hosted=None if hosted is None else str(hosted),
        )
        record = {"format": 1, "meta": meta.to_dict(), "sha256": sha, "submitted_at": submission.submitted_at,
                  "detections": submission.detections, "complete": submission.complete}
        if hosted is not None:
            record.update(hosted=submission.hosted, size=size)

        def store_it(view: Backend | Snapshot) -> Decision:
            names = _check_rules(view, meta, now, limits)
            # Data first, marker last: a crash in between leaves no visible submission (and the Hub writes them
            # in one commit). A Hub file is its reference, in the marker.
            files = {} if hosted is not None else {submission.results_path: data}
            return {**names, **files, f"submissions/{submission.id}/meta.json": _dumps(record)}, None

        backend.transact("submissions", store_it, f"Submission {submission.id}")
    return submission


def list_submissions(store: str | os.PathLike | Backend) -> list[Submission]:
    """Every complete submission, sorted by id."""
    backend = open_backend(store)
    out = []
    for submission_id in _stored_ids(backend):
        record = json.loads(backend.read(f"submissions/{submission_id}/meta.json"))
        out.append(Submission(submission_id, SubmissionMeta.from_dict(record["meta"]), record["sha256"],
                              record["submitted_at"], record["detections"], record.get("complete", True),
                              record.get("hosted")))
    return out


def list_results(store: str | os.PathLike | Backend) -> dict[str, dict]:
    """``{submission id: result record}`` for every evaluated (or failed) submission."""
    backend = open_backend(store)
    return {path[len("results/"):-len(".json")]: json.loads(backend.read(path))
            for path in backend.list("results/") if path.endswith(".json")}


def retention(result: dict, results: dict[str, dict]) -> dict[str, float] | None:
    """Mask AP and Boundary AP of ``result`` over those of the same submitter's (case-insensitive) same model
    name (its :func:`~.identity.identity`) on the same benchmark trained on ``clean`` (``None`` when there is no
    such evaluated result or its AP is 0)."""
    meta = result["meta"]

    def key(item: dict) -> tuple[str, str, str]:
        return item["benchmark"], submitter_key(item["submitter"]), identity(item["model_name"])

    for other in results.values():
        other_meta = other["meta"]
        if other.get("status") == "done" and other_meta["trained_on"] == "clean" and key(other_meta) == key(meta):
            clean, this = other["metrics"], result["metrics"]
            if clean["segm"]["AP"] <= 0 or clean["boundary"]["AP"] <= 0:
                return None
            return {"AP": this["segm"]["AP"] / clean["segm"]["AP"],
                    "boundary_AP": this["boundary"]["AP"] / clean["boundary"]["AP"]}
    return None
