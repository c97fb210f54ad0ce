"""SAM through transformers: one image embedding per image, all prompts of an image in batched decoder calls.

The released COCO-WAN scripts (``create_gt_plus_sam_*.py``) use ``segment_anything``'s ``SamPredictor``:
``set_image`` once per image, then one ``predict(..., multimask_output=True)`` per object, keeping the mask
with the highest predicted IoU (``np.argmax``, the first on ties). :class:`SamSegmenter` computes the same
thing with transformers' ``SamModel``/``SamProcessor``:

* images are resized (longest side to the processor's size, PIL bilinear on ``uint8``), normalised and
  zero-padded by the processor, as ``SamPredictor.set_image`` does (it normalises in the 0-255 scale, the
  processor after rescaling to [0, 1]: the same values up to float32 rounding); several images share one
  vision-encoder forward;
* prompt coordinates are scaled to the resized frame in float64 and sent as float32 (``ResizeLongestSide``'s
  rule); a point prompt is one positive point (label 1) with the padding point the prompt encoder adds when no
  box is given, exactly as in ``SamPredictor``;
* all prompts of an image go through the mask decoder in calls of ``batch_size`` prompts; the mask with the
  highest predicted IoU is selected per prompt (``torch.argmax``: the first on ties) *before* it is upsampled
  (the other two are never needed), then ``post_process_masks`` upsamples it to the original size and
  binarises it at ``logit > 0.0`` (``SamPredictor``'s ``mask_threshold``).

On a CPU the prompt encoder and mask decoder of a float32 model run in float64 and their outputs (IoUs,
low-resolution logits) are rounded to float32, so that the result does not depend on the thread count
(:func:`decoder_dtype_for` says why); ``decoder_dtype="float32"`` is the reference's arithmetic. Batching,
like the decoder precision, changes only the order and width of floating-point sums (logits differ by
~1e-7 at most); a pixel whose logit lies that close to 0 can fall on the other side (see ``tests/test_wan.py``).
:meth:`SamSegmenter.segment_one_by_one` is the released scripts' loop on the same model, kept for parity
checks and ``benchmarks/bench_wan.py``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .errors import WanError
from .prompts import PROMPT_KINDS, PromptKind

__all__ = ["DECODER_DTYPES", "DEFAULT_MODEL", "DTYPES", "PreparedImages", "SamMasks", "SamSegmenter", "decoder_dtype_for",
           "load_image", "model_fingerprint"]

#: The paper's checkpoint (SAM ViT-H).
DEFAULT_MODEL = "facebook/sam-vit-huge"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DECODER_DTYPES = {**DTYPES, "float64": torch.float64}
#: SamPredictor's threshold on mask logits.
MASK_THRESHOLD = 0.0
_MODEL_FILES = (".json", ".safetensors", ".bin", ".pt", ".pth", ".model", ".txt")


def decoder_dtype_for(device_type: str, dtype: str) -> str:
    """The decoder precision :class:`SamSegmenter` uses by default: ``"float64"`` for a ``"float32"`` model on
    a CPU, else ``dtype``.

    Why: CPU BLAS kernels split small float32 matrix products differently for different thread counts (seen
    with MKL on a 2-core AMD EPYC: the decoder's per-prompt MLP heads differ in the last bit between 1 and 2
    threads), which moves predicted IoUs by ~1e-9 and, rarely, flips a pixel whose logit is within ~1e-7 of
    the threshold. In float64 those differences are ~1e-16; the outputs are rounded to float32 (the model's
    precision) before the IoU argmax and the upsample + threshold, so they come out bit-identical for every
    thread count (a mid-size random SAM on 12 coco-tiny images, 1 vs 2 threads: 0 of 2.6 M low-resolution
    logits and 0 of 157 IoUs differ, where float32 gave 124 k, 8 and 2 flipped pixels). Its cost: the decoder
    stage takes ~1.6-2.6x its float32 time on a CPU. The vision encoder (its large products are split without changing sums here) stays in ``dtype``.
    A GPU has no thread count to vary, so the decoder keeps ``dtype`` there.
    """
    return "float64" if device_type == "cpu" and dtype == "float32" else dtype


def load_image(path: str | os.PathLike, height: int, width: int) -> np.ndarray:
    """An image as ``uint8`` RGB ``(height, width, 3)``, decoded by OpenCV as the released scripts do
    (``cv2.imread`` then BGR to RGB; grey images become three channels), but in the stored pixel order: an
    EXIF orientation tag is ignored, because COCO's sizes and annotations refer to the stored pixels.
    Raises ``FileNotFoundError`` or :class:`WanError` (wrong size) naming the file."""
    import cv2

    image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise FileNotFoundError(f"{path}: missing or not a readable image")
    if image.shape[:2] != (height, width):
        raise WanError(f"{path}: the image is {image.shape[1]}x{image.shape[0]} but the COCO file says {width}x{height}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def model_fingerprint(model: str | os.PathLike) -> str:
    """What identifies a checkpoint's weights: for a local folder the SHA-256 of its model files (names and
    bytes); for a Hub id, the id and the resolved commit (``config._commit_hash``)."""
    path = Path(model)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _MODEL_FILES):
            digest.update(file.name.encode() + b"\0")
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
        return f"sha256:{digest.hexdigest()}"
    from ..paths import looks_local

    if looks_local(model):  # a typo'd folder: no Hub request, no HFValidationError
        raise WanError(f"{os.fspath(model)}: no such folder (a SAM checkpoint: a local folder or a Hub id ORG/NAME)")
    from transformers import SamConfig

    try:
        config = SamConfig.from_pretrained(model)
    except OSError as err:
        raise WanError(f"cannot load the SAM checkpoint {str(model)!r} (a Hub id or a local folder): {err}") from None
    return f"{model}@{config._commit_hash}"


@dataclass
class PreparedImages:
    """Images as the vision encoder takes them: ``pixel_values`` ``(B, 3, S, S)`` and, per image, its
    ``original_sizes`` and ``reshaped_sizes`` (``(height, width)`` before padding)."""

    pixel_values: torch.Tensor
    original_sizes: list[tuple[int, int]]
    reshaped_sizes: list[tuple[int, int]]


@dataclass
class SamMasks:
    """One decoder result per prompt: ``masks`` ``bool`` ``(N, height, width)`` (numpy) and ``iou`` the
    predicted IoU of each selected mask (float32 as the model gives it, as Python floats)."""

    masks: np.ndarray
    iou: list[float]


class SamSegmenter:
    """A SAM checkpoint ready to segment prompts.

    Args:
        model: a Hub id or a local folder holding a ``SamModel`` and its ``SamProcessor``.
        device: where to run (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``).
        dtype: ``"float32"`` (default, the reference's precision), ``"bfloat16"`` or ``"float16"`` (GPU).
        decoder_dtype: precision of the prompt encoder and mask decoder; default :func:`decoder_dtype_for`
            (``"float64"`` for a float32 model on a CPU, so that masks and IoUs do not depend on the thread
            count; else ``dtype``). ``"float32"`` is exactly the released scripts' arithmetic.
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, *, device: str | torch.device = "cpu",
                 dtype: str = "float32", decoder_dtype: str | None = None) -> None:
        from transformers import SamModel, SamProcessor

        if dtype not in DTYPES:
            raise WanError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.device = torch.device(device)
        decoder_dtype = decoder_dtype or decoder_dtype_for(self.device.type, dtype)
        if decoder_dtype not in DECODER_DTYPES:
            raise WanError(f"decoder_dtype must be one of {sorted(DECODER_DTYPES)}, got {decoder_dtype!r}")
        self.dtype, self.decoder_dtype = DTYPES[dtype], DECODER_DTYPES[decoder_dtype]
        self.processor = SamProcessor.from_pretrained(model)
        self.model = SamModel.from_pretrained(model, dtype=self.dtype).to(self.device).eval()
        for part in (self.model.shared_image_embedding, self.model.prompt_encoder, self.model.mask_decoder):
            part.to(self.decoder_dtype)  # the vision encoder keeps dtype

    # -- images -------------------------------------------------------------------------------------
    def prepare(self, images: Sequence[np.ndarray]) -> PreparedImages:
        """Resize, normalise and pad RGB ``uint8`` images ``(H, W, 3)`` for the vision encoder (on the CPU)."""
        encoded = self.processor.image_processor(list(images), return_tensors="pt")
        return PreparedImages(
            encoded["pixel_values"],
            [tuple(int(v) for v in size) for size in encoded["original_sizes"].tolist()],
            [tuple(int(v) for v in size) for size in encoded["reshaped_input_sizes"].tolist()],
        )

    @torch.inference_mode()
    def embed(self, prepared: PreparedImages) -> torch.Tensor:
        """Image embeddings ``(B, C, h, w)`` of all images in one vision-encoder forward."""
        pixels = prepared.pixel_values.to(self.device, self.dtype, non_blocking=True)
        return self.model.get_image_embeddings(pixels)

    # -- prompts ------------------------------------------------------------------------------------
    @property
    def _prompt_dtype(self) -> torch.dtype:
        """Prompt coordinates are rounded to float32 (as the reference sends them), then widened for a float64
        decoder; a lower-precision decoder takes them as float32, as transformers expects."""
        return torch.float64 if self.decoder_dtype == torch.float64 else torch.float32

    def _prompt_tensors(self, kind: PromptKind, prompts: Sequence[Sequence[float]], original_size: tuple[int, int],
                        reshaped_size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Decoder keyword arguments for prompts in original pixels, scaled to the resized frame in float64 and
        sent as float32 (as ``ResizeLongestSide.apply_coords``/``apply_boxes`` + ``SamPredictor.predict``)."""
        if kind not in PROMPT_KINDS:
            raise WanError(f"prompt must be one of {sorted(PROMPT_KINDS)}, got {kind!r}")
        coords = np.array(prompts, dtype=np.float64).reshape(len(prompts), -1, 2)
        coords[..., 0] *= reshaped_size[1] / original_size[1]
        coords[..., 1] *= reshaped_size[0] / original_size[0]
        tensor = torch.as_tensor(coords, dtype=torch.float32).to(self.device, self._prompt_dtype)
        if kind == "box":
            return {"input_boxes": tensor.reshape(1, len(prompts), 4)}
        labels = torch.ones((1, len(prompts), 1), dtype=torch.long, device=self.device)
        return {"input_points": tensor.reshape(1, len(prompts), 1, 2), "input_labels": labels}

    def _upsample(self, logits: torch.Tensor, original_size: tuple[int, int], reshaped_size: tuple[int, int]) -> torch.Tensor:
        """``(N, C, h, w)`` low-resolution logits to ``bool`` ``(N, C, H, W)`` masks at the original size."""
        return self.processor.post_process_masks([logits.float()], [original_size], [reshaped_size],
                                                 mask_threshold=MASK_THRESHOLD)[0]

    @torch.inference_mode()
    def segment(self, embedding: torch.Tensor, kind: PromptKind, prompts: Sequence[Sequence[float]],
                original_size: tuple[int, int], reshaped_size: tuple[int, int], *, batch_size: int = 64) -> SamMasks:
        """Masks for all ``prompts`` of one image (``embedding`` ``(1, C, h, w)``), ``batch_size`` prompts per
        decoder call; for each prompt the multimask output with the highest predicted IoU."""
        if batch_size < 1:
            raise WanError(f"batch_size must be >= 1, got {batch_size}")
        height, width = original_size
        masks = np.zeros((len(prompts), height, width), dtype=bool)
        ious: list[float] = []
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            out = self.model(image_embeddings=embedding.to(self.decoder_dtype), multimask_output=True,
                             **self._prompt_tensors(kind, batch, original_size, reshaped_size))
            scores = out.iou_scores[0].float()  # (n, 3)
            best = scores.argmax(dim=-1)
            rows = torch.arange(len(batch), device=best.device)
            selected = out.pred_masks[0][rows, best].unsqueeze(1)  # (n, 1, h, w)
            masks[start : start + len(batch)] = self._upsample(selected, original_size, reshaped_size)[:, 0].cpu().numpy()
            ious.extend(scores[rows, best].tolist())
        return SamMasks(masks, ious)

    @torch.inference_mode()
    def segment_one_by_one(self, embedding: torch.Tensor, kind: PromptKind, prompts: Sequence[Sequence[float]],
                           original_size: tuple[int, int], reshaped_size: tuple[int, int]) -> SamMasks:
        """The released scripts' loop on this model: one decoder call per prompt, all three masks upsampled
        to the original size, then the one with the highest predicted IoU (for parity checks and benchmarks)."""
        height, width = original_size
        masks = np.zeros((len(prompts), height, width), dtype=bool)
        ious: list[float] = []
        for k, prompt in enumerate(prompts):
            out = self.model(image_embeddings=embedding.to(self.decoder_dtype), multimask_output=True,
                             **self._prompt_tensors(kind, [prompt], original_size, reshaped_size))
            scores = out.iou_scores[0, 0].float()
            best = int(np.argmax(scores.cpu().numpy()))
            masks[k] = self._upsample(out.pred_masks[0], original_size, reshaped_size)[0, best].cpu().numpy()
            ious.append(float(scores[best]))
        return SamMasks(masks, ious)
