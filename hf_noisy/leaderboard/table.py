"""Board rows: evaluated results next to the paper's reported numbers (kept apart by their ``source`` column).

Numbers are shown in percent with one decimal, like the paper; an undefined metric (``-1``) is ``None``.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from typing import Any

from .board import list_results, list_submissions, retention
from .storage import Backend, open_backend
from .submission import CONFIGS

__all__ = ["COLUMNS", "board_rows", "load_reported", "queue_rows"]

#: Columns of a benchmark's table, in display order.
COLUMNS = ("Source", "Model", "Method", "Trained on", "Mask AP", "Boundary AP", "Box AP", "Mask AP50", "Mask AP75",
           "Retention", "Retention (boundary)", "Submitter", "Reference")


def load_reported() -> dict:
    """The paper's reported numbers shipped with hf-noisy (``reported.json``: each table with its ``source``)."""
    return json.loads(resources.files(__package__).joinpath("reported.json").read_text(encoding="utf-8"))


def _percent(value: Any) -> float | None:
    return None if value is None or value < 0 else round(100.0 * value, 1)


def _reported_rows(reported: dict) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for table in reported["tables"]:
        for entry in table["entries"]:
            rows.setdefault(table["benchmark"], []).append({
                "Source": "reported", "Model": entry["model_name"], "Method": entry.get("method", ""),
                "Trained on": entry["trained_on"], "Mask AP": entry.get("segm_AP"),
                "Boundary AP": entry.get("boundary_AP"), "Box AP": entry.get("bbox_AP"), "Mask AP50": None,
                "Mask AP75": None, "Retention": entry.get("retention"), "Retention (boundary)": None,
                "Submitter": "paper", "Reference": f"{table['table']}, {reported['paper']['url']}",
            })
    return rows


def _evaluated_row(result: dict, results: dict[str, dict]) -> dict:
    meta, metrics = result["meta"], result["metrics"]
    kept = retention(result, results)  # recomputed: the clean result may have come after this one
    return {
        "Source": "evaluated", "Model": meta["model_name"], "Method": meta["method"], "Trained on": meta["trained_on"],
        "Mask AP": _percent(metrics["segm"]["AP"]), "Boundary AP": _percent(metrics["boundary"]["AP"]),
        "Box AP": _percent(metrics["bbox"]["AP"]), "Mask AP50": _percent(metrics["segm"]["AP50"]),
        "Mask AP75": _percent(metrics["segm"]["AP75"]),
        "Retention": None if kept is None else round(kept["AP"], 3),
        "Retention (boundary)": None if kept is None else round(kept["boundary_AP"], 3),
        "Submitter": meta["submitter"], "Reference": meta.get("paper_url") or meta.get("code_url") or "",
    }


def board_rows(store: str | os.PathLike | Backend | None, *, reported: dict | None = None) -> dict[str, list[dict]]:
    """``{benchmark: rows}``: reported rows first, then evaluated ones, each sorted by config order then mask
    AP (highest first). ``store=None`` gives the reported rows alone."""
    rows = _reported_rows(load_reported() if reported is None else reported)
    if store is not None:
        results = list_results(open_backend(store))
        for result in results.values():
            if result.get("status") == "done":
                rows.setdefault(result["meta"]["benchmark"], []).append(_evaluated_row(result, results))
    order = {name: index for index, name in enumerate(CONFIGS)}
    for benchmark_rows in rows.values():
        benchmark_rows.sort(key=lambda r: (r["Source"] != "reported", order[r["Trained on"]],
                                           -(r["Mask AP"] if r["Mask AP"] is not None else -1.0), r["Model"]))
    return rows


def queue_rows(store: str | os.PathLike | Backend) -> list[dict]:
    """Every submission with its state: ``pending``, ``done`` or ``failed: <reason>``, newest first."""
    backend = open_backend(store)
    results = list_results(backend)
    rows = []
    for submission in list_submissions(backend):
        result = results.get(submission.id)
        state = "pending" if result is None else "done" if result["status"] == "done" else f"failed: {result['reason']}"
        rows.append({"Submitted": submission.submitted_at, "Benchmark": submission.meta.benchmark,
                     "Trained on": submission.meta.trained_on, "Model": submission.meta.model_name,
                     "Submitter": submission.meta.submitter, "State": state, "Id": submission.id})
    rows.sort(key=lambda r: r["Submitted"], reverse=True)
    return rows
