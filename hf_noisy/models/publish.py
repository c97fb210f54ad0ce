"""A trained model on the Hugging Face Hub: its repo created before training (so a token problem stops the run
at once, not after hours), its model card, and the upload of its folder in one commit."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import HfNoisyError

__all__ = ["create_model_repo", "model_card", "upload_model"]

#: metrics.json keys -> (name on the card, model-index metric type)
_CARD_METRICS = {"segm": ("mask AP", "mask_ap"), "boundary": ("Boundary AP", "boundary_ap"), "bbox": ("box AP", "box_ap")}


def create_model_repo(repo_id: str, *, private: bool = False, token: str | None = None):
    """Create the model repo ``repo_id`` if missing and return the ``HfApi`` that may write to it. A missing or
    refused token, or a namespace the token's user is not a member of, is one :class:`HfNoisyError` line that
    starts with ``--push-to-hub REPO:``."""
    from huggingface_hub import HfApi

    from ..hub.access import hub_errors, require_token

    action = f"--push-to-hub {repo_id}"
    api = HfApi(token=require_token(token, action))
    with hub_errors(action):
        me = api.whoami()
        namespaces = {me["name"], *(org["name"] for org in me.get("orgs", []))}
        if repo_id.split("/")[0] not in namespaces:
            raise HfNoisyError(f"{action}: the token belongs to {me['name']!r}, who may write to "
                               f"{', '.join(sorted(namespaces))} only")
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    return api


def upload_model(api, folder: str | Path, repo_id: str,
                 message: str = "Mask2Former trained with hf-noisy's train_mask2former.py") -> str:
    """Upload ``folder`` (model, image processor config, metrics, card) in one commit; returns the commit id."""
    from ..hub.access import hub_errors

    with hub_errors(f"--push-to-hub {repo_id} (the model is saved in {folder})"):
        commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder), commit_message=message)
    return commit.oid


def model_card(*, model_name: str, dataset: str, dataset_config: str, split: str, metrics: dict, benchmark: str,
               recipe: str, revision: str | None = None) -> str:
    """The model's README.md: YAML metadata with a ``model-index`` (mask AP, Boundary AP and box AP on the clean
    evaluation ``split``, in percent, with the dataset repo, config and revision; Hub pages and the leaderboard
    read it) and a table of the same numbers. ``metrics``: ``{"segm"|"boundary"|"bbox": {"AP": fraction, ...}}``;
    ``recipe``: one sentence on how it was trained (shown above the table)."""
    entry = {"type": dataset, "name": f"{dataset} ({dataset_config})", "config": dataset_config, "split": split}
    if revision:
        entry["revision"] = revision
    results = [{"name": label, "type": kind, "value": round(100 * metrics[key]["AP"], 2)}
               for key, (label, kind) in _CARD_METRICS.items() if "AP" in metrics.get(key, {})]
    meta = {
        "library_name": "transformers", "pipeline_tag": "image-segmentation",
        "tags": ["mask2former", "label-noise", "hf-noisy", benchmark],
        "datasets": [dataset],
        "model-index": [{"name": model_name, "results": [{
            "task": {"type": "image-segmentation", "name": "Instance segmentation"},
            "dataset": entry, "metrics": results,
        }]}],
    }
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---",
        f"# Mask2Former trained on `{dataset}` / `{dataset_config}`", "",
        f"{recipe} Scores on the clean `{split}` split (hf-noisy metric: mask AP, Boundary AP, box AP):", "",
        "| metric | AP | AP50 | AP75 |", "|---|---|---|---|",
    ]
    for name in ("segm", "boundary", "bbox"):
        stats = metrics.get(name, {})
        lines.append(f"| {name} | " + " | ".join(f"{100 * stats.get(k, -1):.1f}" for k in ("AP", "AP50", "AP75")) + " |")
    return "\n".join(lines) + "\n"
