"""Leaderboard for the noisy-label benchmarks: checked submissions, local or Hub storage, sandboxed scoring,
and a Gradio board (:mod:`hf_noisy.leaderboard.app`, needs the ``leaderboard`` extra).

>>> from hf_noisy.leaderboard import init_store, submit, evaluate_pending, SubmissionMeta, parse_benchmark_sources
>>> init_store("board", parse_benchmark_sources(["coco-n=noisy-seg/coco-n@v1.0"]))            # doctest: +SKIP
>>> meta = SubmissionMeta("M2F R50", "coco-n", "hard", submitter="alice", method="CE")
>>> submit("board", open("results.json", "rb").read(), meta)                                   # doctest: +SKIP
>>> evaluate_pending("board")                                                                  # doctest: +SKIP
"""

from .board import (STORE_FILE, Submission, init_store, list_results, list_submissions, load_ground_truth, retention,
                    store_benchmarks, submit)
from .evaluator import evaluate_pending
from .ground_truth import BenchmarkSource, ground_truth_file, parse_benchmark_sources
from .policy import Limits, SandboxLimits, check_limits, limits_text, scoring_limits
from .rules import Rules, rules_for, score
from .storage import Backend, HubBackend, LocalBackend, open_backend
from .submission import SubmissionError, SubmissionMeta, check_results, parse_results
from .table import COLUMNS, board_rows, load_reported, queue_rows

__all__ = [
    "STORE_FILE",
    "Backend",
    "BenchmarkSource",
    "HubBackend",
    "Limits",
    "LocalBackend",
    "Rules",
    "SandboxLimits",
    "Submission",
    "SubmissionError",
    "SubmissionMeta",
    "COLUMNS",
    "board_rows",
    "check_limits",
    "check_results",
    "evaluate_pending",
    "ground_truth_file",
    "init_store",
    "list_results",
    "list_submissions",
    "load_ground_truth",
    "limits_text",
    "load_reported",
    "open_backend",
    "parse_benchmark_sources",
    "parse_results",
    "queue_rows",
    "retention",
    "rules_for",
    "score",
    "scoring_limits",
    "store_benchmarks",
    "submit",
]
