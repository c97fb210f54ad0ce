"""Where each benchmark's clean validation annotations come from, and a local cache of them as COCO files.

A source is ``PATH_OR_ID[@REVISION]``: a built benchmark folder or Hub dataset id (its ``clean`` config's
``validation`` split, exported with :func:`hf_noisy.hub.export_coco`), or a COCO instance ``.json`` file.
:func:`resolve_source` is what ``init`` does with one: a local path becomes absolute (so the store means the same
from any working folder), and the benchmark behind it is checked and its version recorded.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..benchmarks import board_ids
from ..errors import HfNoisyError

__all__ = ["BenchmarkSource", "default_cache_dir", "ground_truth_file", "parse_benchmark_sources", "resolve_source"]

#: A Hub dataset id, ``ORG/NAME``.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
#: The version of a COCO ``.json`` source: nothing says which build it came from.
COCO_FILE_VERSION = "custom"


@dataclass(frozen=True)
class BenchmarkSource:
    """``source``: a folder, Hub dataset id or COCO ``.json`` file; ``revision``: a Hub revision or ``None``;
    ``version``: the benchmark version found there by :func:`resolve_source` (``v1.0``, ``custom``), ``None``
    before."""

    source: str
    revision: str | None = None
    version: str | None = None

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
    source is checked (and made absolute) by :func:`resolve_source` when a store records it."""
    sources: dict[str, BenchmarkSource] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not text:
            raise HfNoisyError(f"--benchmark {item!r}: expected NAME=PATH_OR_ID[@REVISION]")
        if name not in board_ids():
            raise HfNoisyError(f"--benchmark {item!r}: unknown benchmark {name!r}; choose from "
                               f"{', '.join(board_ids())}")
        if name in sources:
            raise HfNoisyError(f"--benchmark {name} given twice")
        sources[name] = BenchmarkSource.parse(text)
    return sources


def _benchmark_metadata(benchmark: str, source: BenchmarkSource, *, hub: bool) -> dict:
    """The build metadata at ``source`` (a local folder, or a Hub dataset when ``hub``), checked to be a built
    ``benchmark`` with a ``clean`` config."""
    from ..hub import METADATA_FILE, read_metadata

    where = f"the Hub dataset {source}" if hub else str(Path(source.source).resolve())
    if not hub and not (Path(source.source) / METADATA_FILE).is_file():
        raise HfNoisyError(f"--benchmark {benchmark}={source}: {where} is not a built benchmark (no {METADATA_FILE} "
                           f"in it); build one with `hf-noisy build {benchmark}`")
    try:
        metadata = read_metadata(source.source, revision=source.revision)
    except Exception as err:  # noqa: BLE001 -- bad JSON or any Hub error: one line, its kind named
        reason = (str(err).strip().splitlines() or [""])[0][:200]
        raise HfNoisyError(f"--benchmark {benchmark}={source}: could not read {METADATA_FILE} of {where} "
                           f"({type(err).__name__}{': ' + reason if reason else ''})") from None
    if not isinstance(metadata, dict):
        raise HfNoisyError(f"--benchmark {benchmark}={source}: {METADATA_FILE} of {where} is not an object")
    built = metadata.get("benchmark_id")
    if built != benchmark:
        raise HfNoisyError(f"--benchmark {benchmark}={source}: {where} holds the benchmark {built!r}, not {benchmark}")
    if "clean" not in (metadata.get("configs") or {}):
        raise HfNoisyError(f"--benchmark {benchmark}={source}: {where} has no clean config (its validation split is "
                           "the ground truth)")
    return metadata


def resolve_source(benchmark: str, source: BenchmarkSource, store_root: str | os.PathLike | None = None
                   ) -> BenchmarkSource:
    """The source as a store records it, with its ``version``; :class:`HfNoisyError` (one line) if it is no
    built ``benchmark``.

    * a COCO ``.json`` file: its absolute path (it must exist; version ``custom``: a file names no build);
    * a local folder: its absolute path, or its path relative to ``store_root`` when it lies inside that
      (local) store; it must hold a build of ``benchmark`` (``hf_noisy_benchmark.json``) with a ``clean``
      config; version: the build's ``benchmark_version`` (``custom`` for subsets and other seeds);
    * anything else must be a Hub id ``ORG/NAME``, whose build metadata is read at ``revision`` (Hub access).
    """
    path = Path(source.source).expanduser()
    if path.suffix == ".json":
        if not path.is_file():
            raise HfNoisyError(f"--benchmark {benchmark}={source}: {path}: no such COCO .json file")
        return BenchmarkSource(_local(path, store_root), None, COCO_FILE_VERSION)
    if path.exists() or not _HUB_ID.fullmatch(source.source):
        if not path.is_dir():
            raise HfNoisyError(f"--benchmark {benchmark}={source}: no such folder {path.resolve()} (a Hub dataset id "
                               "is ORG/NAME)")
        metadata = _benchmark_metadata(benchmark, BenchmarkSource(str(path)), hub=False)
        return BenchmarkSource(_local(path, store_root), None, str(metadata.get("benchmark_version") or "custom"))
    metadata = _benchmark_metadata(benchmark, source, hub=True)
    return replace(source, version=str(metadata.get("benchmark_version") or "custom"))


def _local(path: Path, store_root: str | os.PathLike | None) -> str:
    """``path`` made absolute, or relative to ``store_root`` when inside it (the store can then be moved)."""
    absolute = path.resolve()
    if store_root is not None:
        root = Path(store_root).resolve()
        if absolute.is_relative_to(root) and absolute != root:
            return absolute.relative_to(root).as_posix()
    return str(absolute)


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
