"""The noise spec: what noise to apply, typed, serialisable (YAML/JSON), hashable; and the paper's presets.

Format (``version: 1``)::

    version: 1
    seed: 1
    class_noise: {kind: symmetric, rate: 0.4}   # symmetric | asymmetric | matrix (+ matrix: PATH to a CxC row-stochastic matrix)
    spatial:                                     # one op per instance, chosen with these probabilities, else unchanged
      - {op: scale, prob: 0.3, kernel: 7}        # random dilate-or-erode (50/50)
      - {op: localization, prob: 0.3, sigma: 4}
      - {op: approximation, prob: 0.3, tolerance: 15}
    include_crowd: false                         # crowd regions (iscrowd=1) are left as they are
    empty_masks: keep                            # keep | drop: what to do with an instance whose noisy mask is empty
    recompute_geometry: true                     # bbox/area from the noisy mask (false keeps the clean ones)

Ops: ``scale`` / ``dilate`` / ``erode`` / ``opening`` take ``kernel`` (odd k >= 1, k x k ones);
``localization`` takes ``sigma`` (pixels); ``approximation`` takes ``tolerance`` (pixels). ``localization`` and
``approximation`` take ``holes: fill | keep`` (default ``fill``, as the paper's generator: outer contours only).

Annotation-error ops (beyond the paper; see :mod:`hf_noisy.noise.engine` for what each does and the id rules):
``missing``, ``merge``, ``split``, ``box`` and ``crowd_flip`` take no parameter (``{op: missing, prob: 0.1}``);
``shift`` and ``duplicate`` take ``max_offset`` (a fraction of the mask's box width/height, in ``[0, 1]``);
``vertex_dropout`` takes ``fraction`` (of each polygon's vertices, in ``[0, 1]``). ``duplicate``, ``split`` and
``merge`` (:data:`STRUCTURAL_OPS`) need the whole file (ids, neighbours), so they run in
:func:`~hf_noisy.noise.apply_noise` / :func:`~hf_noisy.noise.noise_file`, not one annotation at a time.

Ranges (checked when a spec is made or loaded; :class:`SpecError` otherwise): ``seed`` an integer in
``[0, 2**64)`` (:data:`MAX_SEED`, the generator's 64-bit key); ``kernel`` odd, ``1 <= k <=`` :data:`MAX_KERNEL`;
``sigma`` and ``tolerance`` finite, ``0 <= value <=`` :data:`MAX_SIGMA` / :data:`MAX_TOLERANCE` pixels;
``max_offset`` and ``fraction`` in ``[0, 1]``; ``prob`` and ``rate`` in ``[0, 1]``. A spec file is at most :data:`MAX_SPEC_BYTES` bytes of UTF-8 YAML/JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping

from ..errors import HfNoisyError
from ..safe_yaml import quote

__all__ = ["SpecError", "ClassNoise", "SpatialOp", "NoiseSpec", "PRESETS", "load_spec", "check_seed", "SPATIAL_OPS",
           "ANNOTATION_OPS", "STRUCTURAL_OPS", "MAX_SEED", "MAX_KERNEL", "MAX_SIGMA", "MAX_TOLERANCE"]

SPEC_VERSION = 1
KERNEL_OPS = ("scale", "dilate", "erode", "opening")
#: ops that add or remove instances or need the image's other annotations (planned over the whole file)
STRUCTURAL_OPS = ("duplicate", "split", "merge")
#: annotation-error ops beyond the paper's boundary noise
ANNOTATION_OPS = ("missing",) + STRUCTURAL_OPS + ("box", "shift", "vertex_dropout", "crowd_flip")
SPATIAL_OPS = KERNEL_OPS + ("localization", "approximation") + ANNOTATION_OPS
_PARAM: dict[str, str | None] = {
    **{op: "kernel" for op in KERNEL_OPS}, "localization": "sigma", "approximation": "tolerance",
    **{op: None for op in ANNOTATION_OPS}, "shift": "max_offset", "duplicate": "max_offset", "vertex_dropout": "fraction",
}

#: Seeds are 64-bit keys of the per-annotation generator: ``0 <= seed <= MAX_SEED``.
MAX_SEED = 2**64 - 1
#: Largest kernel (pixels) of scale / dilate / erode / opening (the paper's hardest level uses 7).
MAX_KERNEL = 101
#: Largest localization ``sigma`` (pixels; the paper's hardest level uses 4).
MAX_SIGMA = 1000.0
#: Largest approximation ``tolerance`` (pixels; the paper's hardest level uses 15).
MAX_TOLERANCE = 1000.0
#: Largest spec file read (bytes); a spec is a few hundred.
MAX_SPEC_BYTES = 1 << 20
_MAX_PARAM = {"sigma": MAX_SIGMA, "tolerance": MAX_TOLERANCE, "max_offset": 1.0, "fraction": 1.0}
_UNITS = {"sigma": " pixels", "tolerance": " pixels", "max_offset": " (a fraction of the box side)", "fraction": ""}


class SpecError(HfNoisyError):
    """An invalid noise spec."""


@dataclass(frozen=True)
class ClassNoise:
    """Class (label) noise.

    * ``symmetric``: with probability ``rate`` the label moves to one of the other N-1 categories, uniformly
      (the paper's Eq. 1).
    * ``asymmetric``: with probability ``rate`` the label moves to one of the other categories of the same
      supercategory, uniformly (Eq. 3); a category alone in its supercategory keeps its label.
    * ``matrix``: row ``i`` of the CxC row-stochastic matrix at ``matrix`` (JSON list of lists, rows and
      columns in the order of the file's ``categories``) gives the label distribution for category ``i``.
    """

    kind: Literal["symmetric", "asymmetric", "matrix"]
    rate: float = 0.0
    matrix: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("symmetric", "asymmetric", "matrix"):
            raise SpecError(f"class_noise.kind must be symmetric, asymmetric or matrix, got {quote(self.kind)}")
        if self.kind == "matrix":
            if not self.matrix:
                raise SpecError("class_noise.kind 'matrix' needs 'matrix: PATH'")
            if not isinstance(self.matrix, (str, os.PathLike)):
                raise SpecError(f"class_noise.matrix must be a file path, got {quote(self.matrix)}")
        elif not _is_number(self.rate) or not 0.0 <= self.rate <= 1.0:
            raise SpecError(f"class_noise.rate must be a number in [0, 1], got {quote(self.rate)}")


@dataclass(frozen=True)
class SpatialOp:
    """One spatial noise op and the probability that an instance gets it."""

    op: str
    prob: float
    param: float | None = None  # None for the ops that take none (missing, merge, split, box, crowd_flip)
    holes: Literal["fill", "keep"] = "fill"

    def __post_init__(self) -> None:
        if self.op not in SPATIAL_OPS:
            raise SpecError(f"spatial op must be one of {', '.join(SPATIAL_OPS)}, got {quote(self.op)}")
        if not _is_number(self.prob) or not 0.0 <= self.prob <= 1.0:
            raise SpecError(f"spatial op {quote(self.op)}: prob must be in [0, 1], got {quote(self.prob)}")
        name = _PARAM[self.op]
        if name is None:
            if self.param is not None:
                raise SpecError(f"spatial op {quote(self.op)} takes no parameter, got {quote(self.param)}")
        elif self.op in KERNEL_OPS:
            if (not isinstance(self.param, int) or isinstance(self.param, bool) or not 1 <= self.param <= MAX_KERNEL
                    or self.param % 2 == 0):
                raise SpecError(f"spatial op {quote(self.op)}: kernel must be an odd integer in [1, {MAX_KERNEL}], "
                                f"got {quote(self.param)}")
        elif not _is_number(self.param) or not 0 <= self.param <= _MAX_PARAM[name]:
            raise SpecError(f"spatial op {quote(self.op)}: {name} must be a finite number in [0, {_MAX_PARAM[name]:g}]"
                            f"{_UNITS[name]}, got {quote(self.param)}")
        if self.holes not in ("fill", "keep"):
            raise SpecError(f"spatial op {quote(self.op)}: holes must be 'fill' or 'keep', got {quote(self.holes)}")
        if self.holes == "keep" and self.op not in ("localization", "approximation"):
            raise SpecError(f"spatial op {quote(self.op)}: 'holes' applies only to localization and approximation")

    @property
    def param_name(self) -> str | None:
        """The parameter's key in the spec (``kernel``, ``sigma``, ...), None for an op that takes none."""
        return _PARAM[self.op]

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"op": self.op, "prob": self.prob}
        if self.param_name is not None:
            out[self.param_name] = self.param
        if self.op in ("localization", "approximation"):
            out["holes"] = self.holes
        return out

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> "SpatialOp":
        if not isinstance(entry, Mapping):
            raise SpecError(f"each spatial entry must be a mapping, got {quote(entry)}")
        op = entry.get("op")
        if op not in SPATIAL_OPS:
            raise SpecError(f"spatial op must be one of {', '.join(SPATIAL_OPS)}, got {quote(op)}")
        name = _PARAM[op]
        allowed = ({"op", "prob"} | ({name} if name else set())
                   | ({"holes"} if op in ("localization", "approximation") else set()))
        unknown = set(entry) - allowed
        if unknown:
            raise SpecError(f"spatial op {quote(op)}: unknown key(s) {_names(unknown)}; expected {sorted(allowed)}")
        if "prob" not in entry or (name is not None and name not in entry):
            raise SpecError(f"spatial op {quote(op)} needs 'prob'" + (f" and '{name}'" if name else ""))
        return cls(op=op, prob=entry["prob"], param=entry.get(name) if name else None, holes=entry.get("holes", "fill"))


@dataclass(frozen=True)
class NoiseSpec:
    """Everything that determines a noisy dataset, with the input file and the package version."""

    seed: int = 1
    class_noise: ClassNoise | None = None
    spatial: tuple[SpatialOp, ...] = ()
    include_crowd: bool = False
    empty_masks: Literal["keep", "drop"] = "keep"
    recompute_geometry: bool = True
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_seed(self.seed)
        total = sum(op.prob for op in self.spatial)
        if total > 1.0 + 1e-9:
            raise SpecError(f"spatial op probabilities add up to {total:g}; they must add up to at most 1")
        if len({op.op for op in self.spatial}) != len(self.spatial):
            raise SpecError("each spatial op may appear only once")
        if self.empty_masks not in ("keep", "drop"):
            raise SpecError(f"empty_masks must be 'keep' or 'drop', got {quote(self.empty_masks)}")

    # -- (de)serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Canonical plain-dict form (the YAML/JSON format; ``name`` is not part of it)."""
        out: dict[str, Any] = {"version": SPEC_VERSION, "seed": self.seed}
        if self.class_noise is not None:
            cn = {k: v for k, v in asdict(self.class_noise).items() if v is not None}
            if self.class_noise.kind == "matrix":
                cn.pop("rate", None)
            out["class_noise"] = cn
        if self.spatial:
            out["spatial"] = [op.to_dict() for op in self.spatial]
        out.update(include_crowd=self.include_crowd, empty_masks=self.empty_masks, recompute_geometry=self.recompute_geometry)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str | None = None) -> "NoiseSpec":
        if not isinstance(data, Mapping):
            raise SpecError(f"a noise spec must be a mapping, got {type(data).__name__}")
        allowed = {"version", "seed", "class_noise", "spatial", "include_crowd", "empty_masks", "recompute_geometry"}
        unknown = set(data) - allowed
        if unknown:
            raise SpecError(f"unknown key(s) {_names(unknown)}; expected some of {sorted(allowed)}")
        version = data.get("version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise SpecError(f"unsupported spec version {quote(version)} (this hf-noisy reads version {SPEC_VERSION})")
        class_noise = data.get("class_noise")
        if class_noise is not None:
            if not isinstance(class_noise, Mapping):
                raise SpecError("class_noise must be a mapping like {kind: symmetric, rate: 0.2}")
            unknown = set(class_noise) - {"kind", "rate", "matrix"}
            if unknown:
                raise SpecError(f"class_noise: unknown key(s) {_names(unknown)}")
            if "kind" not in class_noise:
                raise SpecError("class_noise needs 'kind' (symmetric, asymmetric or matrix)")
            class_noise = ClassNoise(**class_noise)
        spatial = data.get("spatial") or []
        if not isinstance(spatial, list):
            raise SpecError("spatial must be a list of {op, prob, ...} entries")
        kwargs = {k: data[k] for k in ("seed", "include_crowd", "empty_masks", "recompute_geometry") if k in data}
        for key in ("include_crowd", "recompute_geometry"):
            if key in kwargs and not isinstance(kwargs[key], bool):
                raise SpecError(f"{key} must be true or false, got {quote(kwargs[key])}")
        return cls(class_noise=class_noise, spatial=tuple(SpatialOp.from_dict(e) for e in spatial), name=name, **kwargs)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, compact): the bytes that :attr:`sha256` hashes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def sha256(self) -> str:
        """Hash of the canonical JSON form (a matrix spec hashes its path, not the file: record both)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @property
    def structural(self) -> bool:
        """Whether an op of :data:`STRUCTURAL_OPS` may be drawn (the run is then planned over the whole file)."""
        return any(op.op in STRUCTURAL_OPS and op.prob > 0 for op in self.spatial)

    def with_seed(self, seed: int) -> "NoiseSpec":
        return replace(self, seed=seed)

    def input_files(self) -> tuple[str, ...]:
        """The files a run of this spec reads (its class-noise matrix): inputs no output may overwrite."""
        noise = self.class_noise
        return (str(noise.matrix),) if noise is not None and noise.kind == "matrix" else ()


def _names(keys: set) -> str:
    """Keys for a message, sorted (YAML keys need not be strings)."""
    return ", ".join(sorted(map(repr, keys)))


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def check_seed(seed: Any) -> int:
    """``seed`` if it is an integer in ``[0, MAX_SEED]`` (what the generator takes), else :class:`SpecError`."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        big = isinstance(seed, int) and seed.bit_length() >= 80
        text = f"an integer of {seed.bit_length()} bits" if big else repr(seed)
        raise SpecError(f"seed must be an integer in [0, 2**64 - 1], got {text}")
    return seed


def _preset(name: str, rate: float, prob: float, kernel: int, sigma: float, tolerance: float) -> NoiseSpec:
    return NoiseSpec(
        seed=1,
        class_noise=ClassNoise("symmetric", rate),
        spatial=(
            SpatialOp("scale", prob, kernel),
            SpatialOp("localization", prob, sigma),
            SpatialOp("approximation", prob, tolerance),
        ),
        name=name,
    )


#: The paper's Table 7 levels (COCO-N, Cityscapes-N, LVIS-N).
PRESETS: dict[str, NoiseSpec] = {
    "easy": _preset("easy", 0.2, 0.2, 3, 2, 5),
    "medium": _preset("medium", 0.3, 0.25, 5, 3, 10),
    "hard": _preset("hard", 0.4, 0.3, 7, 4, 15),
}


def load_spec(name_or_path: str | os.PathLike, *, seed: int | None = None) -> NoiseSpec:
    """A preset name (``easy``, ``medium``, ``hard``) or a YAML/JSON spec file; ``seed`` overrides the spec's."""
    key = str(name_or_path)
    if key in PRESETS:
        spec = PRESETS[key]
    else:
        path = Path(key)
        if not path.is_file():
            raise SpecError(f"{quote(key)} is neither a preset ({', '.join(PRESETS)}) nor a spec file")
        spec = _spec_from_file(path)
        if spec.class_noise is not None and spec.class_noise.kind == "matrix":
            matrix = Path(spec.class_noise.matrix)
            if not matrix.is_absolute():
                spec = replace(spec, class_noise=replace(spec.class_noise, matrix=str(path.parent / matrix)))
    return spec.with_seed(check_seed(seed)) if seed is not None else spec


def _spec_from_file(path: Path) -> NoiseSpec:
    """Parse and check a spec file; every problem is a :class:`SpecError` naming the file."""
    from ..safe_yaml import YamlError, load

    with open(path, "rb") as handle:
        raw = handle.read(MAX_SPEC_BYTES + 1)
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: larger than {MAX_SPEC_BYTES:,} bytes; a noise spec is a short YAML/JSON file")
    try:
        data = load(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except YamlError as err:
        raise SpecError(f"{path}: {err}") from None
    try:
        return NoiseSpec.from_dict(data, name=path.stem)
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None
