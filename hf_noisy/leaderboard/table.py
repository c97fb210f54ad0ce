"""Board rows: evaluated results next to the paper's reported numbers (kept apart by their ``Source`` column).

Numbers are in percent with one decimal, like the paper (retention too: percent of the same model's clean AP);
an undefined metric (``-1``) is ``None``. A row's ``Version`` says what it was scored against:
``paper`` (reported), the published version (``v1.0``) or anything else (``custom``: a subset, another seed,
a COCO file; such rows are not comparable with the rest and :func:`default_view` leaves them out).

The board reads a store that strangers write to, so it reads it record by record: a record it cannot use
(malformed JSON, missing fields, a name with a lone surrogate, ...) is skipped with a logged reason and never
takes the other rows down.
"""

from __future__ import annotations

import json
import logging
import math
import os
from importlib import resources
from typing import Any

from ..benchmarks import CONFIGS
from ..errors import HfNoisyError
from .board import STORE_FILE, Submission, retention
from .storage import Backend, open_backend
from .submission import SubmissionMeta

__all__ = ["COLUMNS", "PUBLISHED_VERSION", "board_rows", "default_view", "load_reported", "queue_rows",
           "read_results", "read_submissions"]

log = logging.getLogger(__name__)


class RecordError(HfNoisyError):
    """A stored record (or ``reported.json`` entry) that is not what hf-noisy writes; the board skips it, logged."""

#: Columns of a benchmark's table, in display order.
COLUMNS = ("Source", "Model", "Method", "Trained on", "Mask AP", "Boundary AP", "Box AP", "Mask AP50", "Mask AP75",
           "Retention", "Boundary retention", "Submitter", "Version", "Reference")
#: The benchmark version rows must have been scored against to be in the default view (reported rows: ``paper``).
PUBLISHED_VERSION = "v1.0"
_METRICS = {"Mask AP": "segm_AP", "Boundary AP": "boundary_AP", "Box AP": "bbox_AP"}


def load_reported() -> dict:
    """The paper's reported numbers shipped with hf-noisy (``reported.json``, written by
    ``tools/make_reported.py``): ``tables`` (board entries, each table with its ``source``) and ``protocol``
    (Tables 1, 3 and 4: header and rows)."""
    return json.loads(resources.files(__package__).joinpath("reported.json").read_text(encoding="utf-8"))


def _percent(value: Any) -> float | None:
    return None if value is None or value < 0 else round(100.0 * value, 1)


def _ratio(value: float | None, clean: float | None) -> float | None:
    return None if value is None or not clean else round(100.0 * value / clean, 1)


def _reported_rows(reported: dict) -> dict[str, list[dict]]:
    """One row per reporter, benchmark, model, method and config; the tables giving its numbers are its reference
    (Table 2 gives mask and Boundary AP, Table 5 box AP of the same models). A table's ``reported_by`` (default
    ``paper``: the v1 paper) is the rows' Submitter and its ``version`` (default ``paper``) their Version, so a
    later report by the authors (their repository) is a second row beside the paper's, never a conflict. Two
    tables of one reporter disagreeing on a number is an error in ``reported.json``."""
    merged: dict[tuple, dict] = {}
    for table in reported["tables"]:
        reporter, version = table.get("reported_by", "paper"), table.get("version", "paper")
        for entry in table["entries"]:
            key = (reporter, entry["benchmark"], entry["model_name"], entry.get("method", ""), entry["trained_on"])
            row = merged.setdefault(key, {
                "Source": "reported", "Model": key[2], "Method": key[3], "Trained on": key[4], "Mask AP": None,
                "Boundary AP": None, "Box AP": None, "Mask AP50": None, "Mask AP75": None, "Retention": None,
                "Boundary retention": None, "Submitter": reporter, "Version": version, "Reference": []})
            for column, field in _METRICS.items():
                if field in entry:
                    if row[column] is not None and row[column] != entry[field]:
                        raise RecordError(f"reported.json: {table['table']} gives {key} {column} {entry[field]}, "
                                         f"another table {row[column]}")
                    row[column] = entry[field]
            if table["table"] not in row["Reference"]:
                row["Reference"].append(table["table"])
    rows: dict[str, list[dict]] = {}
    for (reporter, benchmark, model, method, config), row in merged.items():
        if config != "clean":
            clean = merged.get((reporter, benchmark, model, method, "clean"), {})
            row["Retention"] = _ratio(row["Mask AP"], clean.get("Mask AP"))
            row["Boundary retention"] = _ratio(row["Boundary AP"], clean.get("Boundary AP"))
        if all(name.startswith("Table ") for name in row["Reference"]):
            numbers = [name.split()[-1] for name in row["Reference"]]
            row["Reference"] = f"Table{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}"  # of the paper (About)
        else:
            row["Reference"] = ", ".join(row["Reference"])
        rows.setdefault(benchmark, []).append(row)
    return rows


def _check_text(value: Any, what: str) -> str:
    """``value`` if it is a string that encodes as UTF-8 (a lone surrogate does not), else :class:`RecordError`."""
    if not isinstance(value, str):
        raise RecordError(f"{what} is {type(value).__name__}, not a string")
    value.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate
    return value


def _checked(result: dict) -> dict:
    """A ``done`` result's meta and metrics, checked to be what the evaluator writes (:class:`RecordError` otherwise)."""
    meta, metrics = result["meta"], result["metrics"]
    for field in ("model_name", "benchmark", "trained_on", "submitter"):
        _check_text(meta[field], f"meta.{field}")
    for field in ("method", "paper_url", "code_url"):
        _check_text(meta.get(field, ""), f"meta.{field}")
    if meta["trained_on"] not in CONFIGS:
        raise RecordError(f"meta.trained_on {meta['trained_on']!r} is not one of {', '.join(CONFIGS)}")
    for iou_type, name in (("segm", "AP"), ("boundary", "AP"), ("bbox", "AP"), ("segm", "AP50"), ("segm", "AP75")):
        value = metrics[iou_type][name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise RecordError(f"metrics.{iou_type}.{name} is {value!r}, not a number")
    return result


def _evaluated_row(result: dict, results: dict[str, dict], versions: dict[str, str]) -> dict:
    meta, metrics = result["meta"], result["metrics"]
    # recomputed: the clean result may have come after this one; a clean row keeps all of itself (not shown)
    kept = None if meta["trained_on"] == "clean" else retention(result, results)
    return {
        "Source": "evaluated", "Model": meta["model_name"], "Method": meta.get("method", ""),
        "Trained on": meta["trained_on"], "Mask AP": _percent(metrics["segm"]["AP"]),
        "Boundary AP": _percent(metrics["boundary"]["AP"]), "Box AP": _percent(metrics["bbox"]["AP"]),
        "Mask AP50": _percent(metrics["segm"]["AP50"]), "Mask AP75": _percent(metrics["segm"]["AP75"]),
        "Retention": None if kept is None else round(100.0 * kept["AP"], 1),
        "Boundary retention": None if kept is None else round(100.0 * kept["boundary_AP"], 1),
        "Submitter": meta["submitter"], "Version": versions.get(meta["benchmark"]) or "custom",
        "Reference": meta.get("paper_url") or meta.get("code_url") or "",
    }


def _skip(path: str, err: BaseException) -> None:
    log.warning("leaderboard: skipped the stored record %s: %s: %s", path, type(err).__name__,
                str(err).encode("utf-8", "backslashreplace").decode("utf-8"))


def read_results(store: str | os.PathLike | Backend) -> dict[str, dict]:
    """``{submission id: result record}`` like :func:`~hf_noisy.leaderboard.board.list_results`, but a record
    that is not valid JSON or lacks its ``status`` and ``meta`` is skipped with a logged reason."""
    backend = open_backend(store)
    out = {}
    for path in backend.list("results/"):
        if not path.endswith(".json"):
            continue
        try:
            record = json.loads(backend.read(path))
            if not isinstance(record, dict) or not isinstance(record.get("meta"), dict) or "status" not in record:
                raise RecordError("not a result record (an object with status and meta)")
        except (RecordError, ValueError) as err:
            _skip(path, err)
            continue
        out[path[len("results/"):-len(".json")]] = record
    return out


def read_submissions(store: str | os.PathLike | Backend) -> list[Submission]:
    """Every complete submission like :func:`~hf_noisy.leaderboard.board.list_submissions`, skipping (with a
    logged reason) one whose ``meta.json`` is unreadable."""
    backend = open_backend(store)
    out = []
    for path in backend.list("submissions/"):
        if not path.endswith("/meta.json"):
            continue
        try:
            record = json.loads(backend.read(path))
            meta = SubmissionMeta.from_dict(record["meta"])
            for value in (meta.model_name, meta.benchmark, meta.trained_on, meta.submitter, record["submitted_at"]):
                _check_text(value, "meta")
            out.append(Submission(path[len("submissions/"):-len("/meta.json")], meta, record["sha256"],
                                  record["submitted_at"], record["detections"]))
        except (HfNoisyError, ValueError, KeyError, TypeError) as err:
            _skip(path, err)
    return out


def _versions(backend: Backend) -> dict[str, str]:
    """``{benchmark: version}`` as ``init`` recorded them (an older store without versions: none)."""
    try:
        config = json.loads(backend.read(STORE_FILE) or b"{}")
        return {name: entry.get("version") for name, entry in config.get("benchmarks", {}).items()}
    except (ValueError, AttributeError) as err:
        _skip(STORE_FILE, err)
        return {}


def board_rows(store: str | os.PathLike | Backend | None, *, reported: dict | None = None) -> dict[str, list[dict]]:
    """``{benchmark: rows}``: reported rows first, then evaluated ones, each sorted by config order then mask
    AP (highest first). ``store=None`` gives the reported rows alone. Unusable records are skipped (logged)."""
    rows = _reported_rows(load_reported() if reported is None else reported)
    if store is not None:
        backend = open_backend(store)
        versions = _versions(backend)
        done = {}
        for submission_id, result in read_results(backend).items():
            if result["status"] == "done":
                try:
                    done[submission_id] = _checked(result)
                except (RecordError, ValueError, KeyError, TypeError, AttributeError) as err:
                    _skip(f"results/{submission_id}.json", err)
        for result in done.values():
            rows.setdefault(result["meta"]["benchmark"], []).append(_evaluated_row(result, done, versions))
    order = {name: index for index, name in enumerate(CONFIGS)}
    for benchmark_rows in rows.values():
        benchmark_rows.sort(key=lambda r: (r["Source"] != "reported", order[r["Trained on"]],
                                           -(r["Mask AP"] if r["Mask AP"] is not None else -1.0), r["Model"]))
    return rows


def default_view(rows: list[dict]) -> list[dict]:
    """The rows shown unless asked for more: reported ones (the paper's and the authors' later ones) and those
    scored on the published benchmark version (not ``custom`` builds, subsets or COCO files)."""
    return [row for row in rows if row["Source"] == "reported" or row["Version"] == PUBLISHED_VERSION]


def queue_rows(store: str | os.PathLike | Backend) -> list[dict]:
    """Every submission with its state: ``pending``, ``done`` or ``failed: <reason>``, newest first."""
    backend = open_backend(store)
    results = read_results(backend)
    rows = []
    for submission in read_submissions(backend):
        result = results.get(submission.id)
        state = ("pending" if result is None else "done" if result["status"] == "done" else
                 f"failed: {str(result.get('reason', '')).encode('utf-8', 'backslashreplace').decode('utf-8')}")
        rows.append({"Submitted": submission.submitted_at, "Benchmark": submission.meta.benchmark,
                     "Trained on": submission.meta.trained_on, "Model": submission.meta.model_name,
                     "Submitter": submission.meta.submitter, "State": state, "Id": submission.id})
    rows.sort(key=lambda r: r["Submitted"], reverse=True)
    return rows
