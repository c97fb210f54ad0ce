"""Where each benchmark's clean validation annotations come from, and a local cache of them as COCO files.

A source is ``PATH_OR_ID[@REVISION]``: a built benchmark folder or Hub dataset id (its ``clean`` config's
``validation`` split, exported with :func:`hf_noisy.hub.export_coco`), or a COCO instance ``.json`` file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import HfNoisyError
from .submission import BENCHMARKS

__all__ = ["BenchmarkSource", "default_cache_dir", "ground_truth_file", "parse_benchmark_sources"]


@dataclass(frozen=True)
class BenchmarkSource:
    """``source``: a folder, Hub dataset id or COCO ``.json`` file; ``revision``: a Hub revision or ``None``."""

    source: str
    revision: str | None = None

    @classmethod
    def parse(cls, text: str) -> BenchmarkSource:
        """``PATH_OR_ID[@REVISION]`` (an ``@`` inside an existing local path is part of the path)."""
        if "@" in text and not Path(text).exists():
            source, revision = text.rsplit("@", 1)
            if not source or not revision:
                raise HfNoisyError(f"benchmark source {text!r}: expected PATH_OR_ID[@REVISION]")
            return cls(source, revision)
        return cls(text)

    def __str__(self) -> str:
        return self.source + (f"@{self.revision}" if self.revision else "")


def parse_benchmark_sources(items: list[str]) -> dict[str, BenchmarkSource]:
    """``["coco-n=PATH_OR_ID[@REVISION]", ...]`` -> ``{benchmark: source}`` (each benchmark at most once). A
    local source (a ``.json`` file or a build folder) must exist: a missing one fails at once, naming it."""
    sources: dict[str, BenchmarkSource] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not text:
            raise HfNoisyError(f"--benchmark {item!r}: expected NAME=PATH_OR_ID[@REVISION]")
        if name not in BENCHMARKS:
            raise HfNoisyError(f"--benchmark {item!r}: unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        if name in sources:
            raise HfNoisyError(f"--benchmark {name} given twice")
        sources[name] = BenchmarkSource.parse(text)
        _check_source(name, sources[name])
    return sources


def _check_source(name: str, source: BenchmarkSource) -> None:
    """A local source must exist now (a Hub id is checked when it is first exported; no network here)."""
    from ..hub import locate_dataset

    if source.source.endswith(".json"):
        if not Path(source.source).is_file():
            raise HfNoisyError(f"--benchmark {name}: {source.source}: no such file")
        return
    try:
        locate_dataset(source.source)
    except HfNoisyError as err:
        raise HfNoisyError(f"--benchmark {name}: {err}") from None


def default_cache_dir() -> Path:
    """``$HF_HOME/hf_noisy/leaderboard`` (``HF_HOME`` defaults to ``~/.cache/huggingface``)."""
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hf_noisy" / "leaderboard"


def _fingerprint(source: BenchmarkSource) -> str:
    """Identifies the exact annotations: the source and revision, plus the content of a local build's metadata
    (a rebuilt folder gets a new cache entry)."""
    from ..hub import METADATA_FILE

    digest = hashlib.sha256(str(source).encode("utf-8"))
    metadata = Path(source.source) / METADATA_FILE
    if metadata.is_file():
        digest.update(metadata.read_bytes())
    return digest.hexdigest()[:20]


def ground_truth_file(source: BenchmarkSource, cache_dir: str | os.PathLike | None = None) -> Path:
    """A COCO file with the benchmark's clean validation annotations (source category ids).

    A ``.json`` source is used as it is; a dataset's split is exported once into ``cache_dir`` (default
    :func:`default_cache_dir`) and reused.
    """
    path = Path(source.source)
    if path.suffix == ".json":
        if not path.is_file():
            raise HfNoisyError(f"ground truth {path}: no such file")
        return path
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / f"gt-{_fingerprint(source)}.json"
    if not target.is_file():
        from ..hub import export_coco

        export_coco(source.source, "clean", "validation", target, revision=source.revision)
    return target
