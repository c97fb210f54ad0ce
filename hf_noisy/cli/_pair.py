"""The clean/noisy pair that ``hf-noisy quality`` and ``hf-noisy fit`` compare: two COCO files, or two configs
of a dataset built by ``hf-noisy build`` (``--dataset DIR``: their train splits)."""

from __future__ import annotations


def load_pair(clean: str, noisy: str, build: str | None = None, *, progress: bool = False) -> tuple[dict, dict]:
    """``(clean, noisy)`` COCO dicts: files (validated, empty masks allowed), or with ``build`` the train
    split of the configs named ``clean`` and ``noisy`` of that dataset folder (or Hub id), ``progress``
    showing the ``datasets`` library's bars while it reads them."""
    if build is None:
        from ..coco import load_coco

        return load_coco(clean, allow_empty_masks=True), load_coco(noisy, allow_empty_masks=True)
    from ..hub import export_coco

    return (export_coco(build, clean, "train", progress=progress),
            export_coco(build, noisy, "train", progress=progress))
