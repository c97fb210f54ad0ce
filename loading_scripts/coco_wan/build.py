"""Build the COCO-WAN dataset folder (a thin wrapper over hf_noisy.hub.build_benchmark("coco-wan", ...)).

    python loading_scripts/coco_wan/build.py --coco-root /data/coco --wan-dir wan --out coco-wan --num-proc 8
    hf-noisy push coco-wan --repo-id noisy-seg/coco-wan --revision v1.0

Same as ``hf-noisy build coco-wan ...``; every option of that command is accepted.
"""

import sys

from hf_noisy.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", "coco-wan", *sys.argv[1:]]))
