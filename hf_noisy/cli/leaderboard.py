"""hf-noisy leaderboard {init,upload-results,submit,evaluate,serve}: a leaderboard store, its submissions, scores
and board."""

from __future__ import annotations

import argparse
import math

from ..benchmarks import CONFIGS, board_ids
from ._options import add_option, at_least, number_in

#: an argparse type: a budget, a number > 0
_positive = number_in(0, math.inf, open_low=True)
from ._progress import add_progress_argument, show_progress


def _one_of(names: tuple[str, ...]) -> str:
    """``a, b or c``."""
    return f"{', '.join(names[:-1])} or {names[-1]}"


HELP = "leaderboard: create a store, push and submit results, score pending submissions, serve the Gradio board"
DESCRIPTION = """\
A leaderboard store is a local folder or, written hf://ORG, two Hub dataset repos (ORG/leaderboard-submissions,
ORG/leaderboard-results). Submissions are COCO results files (.json or .json.gz; RLE masks, scores in [0, 1],
the source dataset's category ids, image ids of the benchmark's clean validation split), checked before
anything is stored, then scored in a resource-limited child process.

A results file is best submitted from your own Hub repo, at a pinned commit: upload-results pushes it and
prints its reference, which submit (and the board's form) take in place of a local file.

examples:
  hf-noisy leaderboard init --store board --benchmark coco-n=noisy-seg/coco-n@v1.0
  hf-noisy leaderboard upload-results hard.json.gz --repo-id alice/m2f-r50-results
  hf-noisy leaderboard submit hf://datasets/alice/m2f-r50-results@COMMIT/hard.json.gz --store board \\
      --benchmark coco-n --trained-on hard --model-name "M2F R50" --method CE --submitter alice
  hf-noisy leaderboard evaluate --store board
  hf-noisy leaderboard serve --store board --submitter alice
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    init = sub.add_parser("init", help="create a store and set where each benchmark's validation annotations come from")
    init.add_argument("--store", required=True, help="a folder, or hf://ORG for Hub dataset repos")
    init.add_argument("--benchmark", action="append", required=True, metavar="NAME=PATH_OR_ID[@REVISION]",
                      help=f"{_one_of(board_ids())} = a built dataset folder (recorded as an "
                           "absolute path, or relative to the store when inside it), a Hub dataset id ORG/NAME, "
                           "or a COCO .json file (repeatable); checked to hold that benchmark")

    upload = sub.add_parser("upload-results", help="push a results file to your Hub dataset repo and print the "
                                                   "reference to submit")
    upload.add_argument("results", help="COCO results file (.json or .json.gz)")
    add_option(upload, "--repo-id", aliases=("--repo",), required=True,
               help="your dataset repo, USER/NAME (created if missing)")
    upload.add_argument("--path-in-repo", default=None, help="its name in the repo (default: the file's name)")
    upload.add_argument("--private", action="store_true", help="create the repo private (the board cannot read it "
                                                               "unless its token may)")

    submit = sub.add_parser("submit", help="check a results file and store it for evaluation")
    submit.add_argument("results", help="hf://datasets/USER/REPO@COMMIT/FILE (a file in your Hub repo, see "
                                        "upload-results), or a local COCO results file (.json or .json.gz)")
    submit.add_argument("--store", required=True)
    submit.add_argument("--benchmark", required=True, help=_one_of(board_ids()))
    submit.add_argument("--trained-on", required=True, help=f"the config trained on: {_one_of(CONFIGS)}")
    submit.add_argument("--model-name", required=True)
    submit.add_argument("--submitter", required=True, help="your Hub user name")
    submit.add_argument("--method", default="", help="training method, e.g. CE or SCE")
    submit.add_argument("--config-revision", default="", help="revision of the training config (tag or commit)")
    submit.add_argument("--paper-url", default="")
    submit.add_argument("--code-url", default="")

    evaluate = sub.add_parser("evaluate", help="score every pending submission in a resource-limited child process")
    evaluate.add_argument("--store", required=True)
    evaluate.add_argument("--cpu-seconds", type=_positive, default=None,
                          help="CPU time per submission, s (default: its benchmark's; the About tab lists them)")
    evaluate.add_argument("--memory-mb", type=_positive, default=None,
                          help="memory per submission beyond the loaded ground truth, MB (default: its benchmark's)")
    evaluate.add_argument("--wall-seconds", type=_positive, default=None,
                          help="real time per submission (default: twice the CPU time plus 600)")
    evaluate.add_argument("--cache-dir", default=None, help="where exported ground truth is kept "
                                                            "(default $HF_HOME/hf_noisy/leaderboard)")
    add_progress_argument(evaluate)

    serve = sub.add_parser("serve", help="run the Gradio board locally (needs the leaderboard extra)")
    serve.add_argument("--store", required=True)
    serve.add_argument("--submitter", default=None,
                       help="who submits from this local board (on a Space: the logged-in Hub user instead); "
                            "without it the submit tab is read-only")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=at_least(0, 65535), default=7860, help="TCP port (default 7860)")
    serve.add_argument("--no-evaluate", action="store_true", help="do not score submissions as they arrive")
    for subcommand in sub.choices.values():  # errors read `{subcommand.prog}: error: ...`, as argparse's
        subcommand.set_defaults(_prog=subcommand.prog)


def run(args: argparse.Namespace) -> int:
    hub_store = str(getattr(args, "store", "")).startswith("hf://")
    hosted = str(getattr(args, "results", "")).startswith("hf://")
    if not (hub_store or hosted or args.action == "upload-results"):
        return _run(args)
    from ..hub.access import hub_errors, require_token

    action = f"leaderboard {args.action}" + (f" on {args.store}" if hasattr(args, "store") else "")
    # serve can show a public board, and a public results file is read, without a token
    if args.action == "upload-results" or (hub_store and args.action != "serve"):
        require_token(None, action)
    with hub_errors(action):  # a refused token or repo is one line, not a huggingface_hub traceback
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from .. import leaderboard as lb

    if args.action == "init":
        config = lb.init_store(args.store, lb.parse_benchmark_sources(args.benchmark))
        for name, entry in sorted(config["benchmarks"].items()):
            print(f"{name}: {entry['source']}" + (f"@{entry['revision']}" if entry["revision"] else "")
                  + f" (benchmark version {entry.get('version') or 'unknown'})")
        return 0
    if args.action == "upload-results":
        from pathlib import Path

        from ..leaderboard.hosted import upload_results

        if not Path(args.results).is_file():
            raise FileNotFoundError(f"{args.results}: no such file")
        print(upload_results(args.results, args.repo_id, path_in_repo=args.path_in_repo, private=args.private))
        return 0
    if args.action == "submit":
        from pathlib import Path

        from ..leaderboard.hosted import parse_hosted

        meta = lb.SubmissionMeta(model_name=args.model_name, benchmark=args.benchmark, trained_on=args.trained_on,
                                 submitter=args.submitter, method=args.method, config_revision=args.config_revision,
                                 paper_url=args.paper_url, code_url=args.code_url)
        results = parse_hosted(args.results) if args.results.startswith("hf://") else Path(args.results)
        if isinstance(results, Path) and not results.is_file():
            raise FileNotFoundError(f"{results}: no such file")
        submission = lb.submit(args.store, results, meta)
        checked = ("" if submission.complete else
                   " checked so far; the rest is checked when it is scored")
        print(f"stored {submission.id} ({submission.detections} detections{checked}); pending evaluation")
        return 0
    if args.action == "evaluate":
        def limits(benchmark: str) -> lb.SandboxLimits:  # each benchmark's budgets, with the flags given
            return lb.scoring_limits(benchmark, args.cpu_seconds, args.memory_mb, args.wall_seconds)

        progress = show_progress(args)

        def report(record: dict) -> None:
            if record["status"] == "done":
                metrics = record["metrics"]
                line = (f"done    {record['submission']}: mask AP {metrics['segm']['AP']:.4f}, "
                        f"boundary AP {metrics['boundary']['AP']:.4f}, box AP {metrics['bbox']['AP']:.4f}")
            else:
                line = f"failed  {record['submission']}: {record['reason']}"
            if progress:  # above the bar, which is drawn again below it
                from tqdm.auto import tqdm

                tqdm.write(line)
            else:
                print(line)

        written = lb.evaluate_pending(args.store, limits=limits, cache_dir=args.cache_dir, on_result=report,
                                      progress=progress)
        if not written:
            print("nothing pending")
        return 0
    from ..leaderboard.app import serve

    serve(args.store, submitter=args.submitter, host=args.host, port=args.port, evaluate=not args.no_evaluate)
    return 0

