"""hf-noisy push: upload a built dataset folder to the Hugging Face Hub and tag the version."""

from __future__ import annotations

import argparse

HELP = "upload a built dataset folder to the Hugging Face Hub and tag it (e.g. v1.0)"
DESCRIPTION = """\
Upload a folder written by `hf-noisy build` to a dataset repository (created if missing) in one commit, then
tag that commit with --revision (default: the build's benchmark version, e.g. v1.0). A tag that exists already
is an error: published versions never move. Authentication: `hf auth login` or HF_TOKEN.

A folder holding images whose source terms forbid redistribution (Cityscapes-N built with --image-storage
embedded or shared) is refused unless --i-have-redistribution-rights; annotation-only folders (--image-storage
none, Cityscapes-N's default) and COCO/LVIS images (Flickr, under their owners' Creative Commons licences) are
pushed as they are.

example:
  hf-noisy push coco-n --repo-id noisy-seg/coco-n --revision v1.0
  python -c "from datasets import load_dataset; load_dataset('noisy-seg/coco-n', 'hard', revision='v1.0')"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="dataset folder written by hf-noisy build")
    parser.add_argument("--repo-id", required=True, help="dataset repository, e.g. noisy-seg/coco-n")
    parser.add_argument("--revision", default=None, help="tag to create (default: the build's benchmark version)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--i-have-redistribution-rights", action="store_true", dest="have_redistribution_rights",
                        help="push images whose source terms forbid redistribution (you hold the rights)")


def run(args: argparse.Namespace) -> int:
    from ..hub import push_dataset

    result = push_dataset(args.folder, args.repo_id, revision=args.revision, private=args.private,
                          have_redistribution_rights=args.have_redistribution_rights)
    print(f"pushed {args.folder} to datasets/{result.repo_id} @ {result.commit[:12]}, tagged {result.revision}")
    return 0
