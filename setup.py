"""Only the C extension lives here; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("hf_noisy._rle", ["hf_noisy/_rle.c"], extra_compile_args=["-O3"])])
