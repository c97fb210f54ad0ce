"""hf-noisy push-metric: publish the evaluate metric module as a Hub Space, for evaluate.load("ORG/NAME")."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "publish the evaluate metric (eval/mask_boundary_ap) as a Hub Space for evaluate.load('ORG/mask_boundary_ap')"
DESCRIPTION = """\
Upload a metric module folder (NAME.py, README.md card, app.py widget, requirements.txt) to the gradio Space
ORG/NAME (created if missing) in one commit. evaluate.load("ORG/NAME") then downloads NAME.py from it, and the
Space shows the metric's card and widget. The Space must be named after the script. Authentication:
`hf auth login` or HF_TOKEN.

example:
  hf-noisy push-metric --repo-id noisy-seg/mask_boundary_ap
  python -c "import evaluate; print(evaluate.load('noisy-seg/mask_boundary_ap').name)"
"""

#: the module folder in a source checkout of hf-noisy
DEFAULT_MODULE = Path(__file__).resolve().parents[2] / "eval" / "mask_boundary_ap"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-id", required=True, help="the Space, ORG/NAME with NAME the script's name")
    parser.add_argument("--module", default=str(DEFAULT_MODULE), help="metric module folder (default: %(default)s)")
    parser.add_argument("--private", action="store_true", help="create the Space as private")


def run(args: argparse.Namespace) -> int:
    from ..hub.metric_space import push_metric

    result = push_metric(args.module, args.repo_id, private=args.private)
    print(f"pushed {args.module} to spaces/{result.repo_id} @ {result.commit[:12]} ({', '.join(result.files)})")
    return 0
