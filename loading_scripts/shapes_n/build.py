"""Build the Shapes-N dataset folder (a thin wrapper over hf_noisy.hub.build_benchmark("shapes-n", ...)).

    python loading_scripts/shapes_n/build.py --out shapes-n
    hf-noisy push shapes-n --repo-id noisy-seg/shapes-n

Same as ``hf-noisy build shapes-n ...``; every option of that command is accepted.
"""

import sys

from hf_noisy.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", "shapes-n", *sys.argv[1:]]))
