"""hf-noisy: label-noise benchmarks for instance segmentation on the Hugging Face stack."""

__version__ = "0.1.0"
