"""Build the LVIS-N dataset folder (a thin wrapper over hf_noisy.hub.build_benchmark("lvis-n", ...)).

    python loading_scripts/lvis_n/build.py --lvis-root /data/lvis --coco-root /data/coco --out lvis-n --num-proc 8
    hf-noisy push lvis-n --repo-id noisy-seg/lvis-n --revision v1.0

Same as ``hf-noisy build lvis-n ...``; every option of that command is accepted.
"""

import sys

from hf_noisy.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", "lvis-n", *sys.argv[1:]]))
