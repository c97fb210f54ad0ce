"""Build the COCO-N dataset folder (a thin wrapper over hf_noisy.hub.build_benchmark("coco-n", ...)).

    python loading_scripts/coco_n/build.py --coco-root /data/coco --out coco-n --num-proc 8
    hf-noisy push coco-n --repo-id noisy-seg/coco-n --revision v1.0

Same as ``hf-noisy build coco-n ...``; every option of that command is accepted.
"""

import sys

from hf_noisy.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", "coco-n", *sys.argv[1:]]))
