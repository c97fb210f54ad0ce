"""A training run's folder: complete-or-absent checkpoints (accelerate state + model config + position in the
data), the latest one to resume from, the final model, and atomic JSON records.

Layout: ``OUTPUT_DIR/checkpoints/step-<SSSSSS>/`` holds accelerate's state (weights, optimizer, scheduler, every
rank's RNG), ``config.json`` (loadable with ``from_pretrained``) and ``train_state.json`` (``step``, ``epoch``,
``batch``: micro-batches of that epoch already consumed per rank, ``world_size``, ``per_device_batch_size``).
A checkpoint is built in a hidden ``.step-<SSSSSS>.partial`` sibling and swapped into place when every rank has
written its part, so a crash or Ctrl-C never leaves a complete-looking folder that is not complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import HfNoisyError
from ..fsutil import atomic_directory, atomic_write_text, replace_folder

__all__ = ["RunFolderError", "checkpoint_folder", "claim_output_dir", "latest_checkpoint", "load_checkpoint",
           "resume_hint", "save_checkpoint", "save_model", "write_json"]


class RunFolderError(HfNoisyError):
    """An output folder or checkpoint that cannot be used as asked (not empty, none to resume, another layout)."""


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON at ``path``, atomically (complete or absent)."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def checkpoint_folder(output_dir: str | Path, step: int) -> Path:
    """Where the checkpoint of optimizer step ``step`` lives."""
    return Path(output_dir) / "checkpoints" / f"step-{step:06d}"


def latest_checkpoint(output_dir: str | Path) -> Path:
    """The checkpoint of the highest step under ``output_dir``; :class:`RunFolderError` if there is none."""
    found = sorted((Path(output_dir) / "checkpoints").glob("step-*"))
    if not found:
        raise RunFolderError(f"--resume: no checkpoint in {Path(output_dir) / 'checkpoints'}")
    return found[-1]


def claim_output_dir(accelerator, output_dir: str | Path, *, resume: bool, overwrite: bool) -> None:
    """Check, on every rank, that a run may write into ``output_dir``: empty or absent, or ``resume`` (continue
    it), or ``overwrite`` (reuse it: its old checkpoints are removed, so a later resume cannot pick one up).
    :class:`RunFolderError` otherwise, before anything is written."""
    output_dir = Path(output_dir)
    occupied = output_dir.is_dir() and any(output_dir.iterdir()) and not (resume or overwrite)
    accelerator.wait_for_everyone()  # every rank has looked before anything is written
    if occupied:
        raise RunFolderError(f"{output_dir} is not empty (pass --resume to continue, --overwrite to reuse it)")
    if overwrite and not resume and accelerator.is_main_process:
        shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)


def resume_hint(output_dir: str | Path, command: list[str], argv: list[str]) -> str:
    """What an interrupted run tells its user: what was kept, and ``command`` + ``argv`` (without ``--resume``
    and ``--overwrite``) plus ``--resume`` to continue from the last complete checkpoint, or plus
    ``--overwrite`` when there is none yet."""
    import shlex

    found = sorted((Path(output_dir) / "checkpoints").glob("step-*"))
    kept, skip_value = [], False
    for item in argv:
        if skip_value:
            skip_value = False
            if not item.startswith("-"):
                continue
        if item == "--resume":
            skip_value = True
            continue
        if item.startswith("--resume=") or item == "--overwrite":
            continue
        kept.append(item)
    if not found:
        return ("interrupted before the first checkpoint: nothing to resume from; start again with --overwrite:\n  "
                + shlex.join([*command, *kept, "--overwrite"]))
    return (f"interrupted: nothing half-done was kept; the last complete checkpoint is {found[-1]}. "
            "Continue with the same command plus --resume (under accelerate launch, add it there):\n  "
            + shlex.join([*command, *kept, "--resume"]))


def save_model(folder: str | Path, model, *, image_size: tuple[int, int], files: dict[str, str]) -> None:
    """The final model at ``folder``, complete or absent (replacing an older one): weights and config
    (``save_pretrained``), the image processor of the evaluation resize ``image_size`` = ``(shortest edge,
    longest edge)`` in pixels, and ``files`` (name -> text, e.g. ``metrics.json`` and the ``README.md`` card)."""
    from transformers import Mask2FormerImageProcessorPil

    with atomic_directory(folder, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        Mask2FormerImageProcessorPil(size={"shortest_edge": image_size[0],
                                        "longest_edge": image_size[1]}).save_pretrained(tmp)
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")


def save_checkpoint(accelerator, model, folder: str | Path, state: dict) -> None:
    """accelerate state + ``config.json`` + ``train_state.json`` (``state``), built in a hidden sibling and swapped
    into place by the main process once every rank has written its part. Every rank calls it."""
    folder = Path(folder)
    partial = folder.parent / f".{folder.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    try:
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            accelerator.unwrap_model(model).config.save_pretrained(partial)
            write_json(partial / "train_state.json", state)
            replace_folder(partial, folder)  # no moment without a checkpoint at ``folder``
    except BaseException:  # Ctrl-C or a failure mid-save: nothing half-written stays behind
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()


def load_checkpoint(accelerator, folder: str | Path, *, per_device_batch_size: int) -> dict:
    """Restore the accelerate state of ``folder`` (every rank calls it) and return its ``train_state.json``;
    :class:`RunFolderError` if it was written by another number of processes or batch size (the data order
    would not continue)."""
    folder = Path(folder)
    accelerator.load_state(str(folder))  # weights, optimizer, scheduler, every rank's RNG state
    state = json.loads((folder / "train_state.json").read_text(encoding="utf-8"))
    if state["world_size"] != accelerator.num_processes or state["per_device_batch_size"] != per_device_batch_size:
        raise RunFolderError("resume with the same number of processes and batch size as the checkpoint")
    return state
