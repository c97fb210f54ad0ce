"""Only the C extensions live here; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("hf_noisy._rle", ["hf_noisy/_rle.c"], extra_compile_args=["-O3"]),
    Extension("hf_noisy._simplify", ["hf_noisy/_simplify.c"], extra_compile_args=["-O3", "-ffp-contract=off"]),
])
