"""Build the Cityscapes-N dataset folder (a thin wrapper over hf_noisy.hub.build_benchmark("cityscapes-n", ...)).

    python loading_scripts/cityscapes_n/build.py --cityscapes-root /data/cityscapes --out cityscapes-n --num-proc 8
    hf-noisy push cityscapes-n --repo-id noisy-seg/cityscapes-n --revision v1.0

Same as ``hf-noisy build cityscapes-n ...``; every option of that command is accepted.
"""

import sys

from hf_noisy.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", "cityscapes-n", *sys.argv[1:]]))
