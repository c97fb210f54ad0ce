"""The Gradio leaderboard: one table per benchmark, a robustness plot, a submit tab and the protocol.

Locally: ``hf-noisy leaderboard serve --store DIR --submitter NAME``. As a Hugging Face Space (``SPACE_ID`` is
set there): an ``app.py`` of ``from hf_noisy.leaderboard.app import main; main()`` with the Space variable
``HF_NOISY_STORE=hf://ORG`` (and a write token as the secret ``HF_TOKEN``); the submitter is then the Hub
user who logged in with the Space's "Sign in with Hugging Face" button (``hf_oauth: true`` in the Space's
README), never a typed name. Needs the ``leaderboard`` extra (gradio, matplotlib).

The tables are plain ``gr.Dataframe`` with filters above them: ``gradio_leaderboard`` (the HF template's
component) requires gradio < 6.
"""

from __future__ import annotations

import os
from typing import Any

from .storage import open_backend
from .evaluator import SandboxLimits, evaluate_pending
from .storage import Backend
from .submission import BENCHMARKS, CONFIGS, Limits, SubmissionError, SubmissionMeta
from .table import COLUMNS, board_rows, queue_rows

__all__ = ["build_app", "filter_rows", "main", "robustness_figure", "serve", "submit_form"]

#: Widths of the table's columns (:data:`~hf_noisy.leaderboard.table.COLUMNS`), in percent of the table.
COLUMN_WIDTHS = ("8%", "13%", "6%", "7%", "6%", "7%", "6%", "6%", "6%", "7%", "8%", "7%", "13%")

ABOUT = """\
## Protocol

Models are **trained on one config** of a benchmark (`clean`, `easy`, `medium` or `hard`: the noise levels of
Grad et al. 2024, Table 7, or COCO-WAN's weak annotations) and **evaluated on the clean validation split**,
always: the paper measures what noisy *training* labels cost, against clean labels.

* **Mask AP**, **Boundary AP** (Boundary IoU, dilation ratio 0.02; IoU = min(mask IoU, boundary IoU)) and
  **box AP**, COCO rules (AP at IoU 0.50:0.95, at most 100 detections per image) for COCO-N, Cityscapes-N and
  COCO-WAN; LVIS rules for LVIS-N (federated negatives, 300 detections per image, APr/APc/APf). The numbers
  equal `hf-noisy evaluate --gt VAL.json --predictions RESULTS.json --json`.
* **Retention** = AP of a model trained on a noisy config / AP of the same model name (same submitter)
  trained on `clean`: how much of its clean AP a method keeps under noise.
* Rows marked **reported** are the paper's published numbers (each with its table); rows marked
  **evaluated** were scored here from submitted predictions.

## Submitting

A COCO results file, `.json` or `.json.gz`: a list of
`{"image_id", "category_id", "segmentation": {"size": [h, w], "counts": "..."}, "score"}` (optional `"bbox"`),
with the image ids of the benchmark's clean validation split, the source dataset's category ids and scores
in [0, 1]. Files are parsed as JSON only (never pickle or YAML), after size, gzip and nesting caps; every
detection is checked before anything is stored. One submission per model name, benchmark and config per
user; a few submissions per user per day. Each submission is scored in a separate process with CPU-time
and memory limits.
"""


def filter_rows(rows: list[dict], query: str = "", configs: list[str] | None = None,
                sources: list[str] | None = None) -> Any:
    """Rows as a pandas DataFrame (columns :data:`COLUMNS`), keeping those whose model, method or submitter
    contains ``query`` (case-insensitive), trained on one of ``configs`` and from one of ``sources``."""
    import pandas as pd

    query = (query or "").strip().lower()
    kept = [row for row in rows
            if (not query or any(query in str(row[key]).lower() for key in ("Model", "Method", "Submitter")))
            and (configs is None or row["Trained on"] in configs)
            and (sources is None or row["Source"] in sources)]
    return pd.DataFrame(kept, columns=list(COLUMNS))


def robustness_figure(rows: list[dict], benchmark: str) -> Any:
    """Mask AP (solid) and Boundary AP (dashed) against the training config, one colour per model."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.add_subplot()
    groups: dict[tuple, dict[str, tuple]] = {}
    for row in rows:
        key = (row["Model"], row["Method"], row["Submitter"], row["Source"])
        groups.setdefault(key, {})[row["Trained on"]] = (row["Mask AP"], row["Boundary AP"])
    colours = matplotlib.colormaps["tab10"]
    for index, ((model, method, submitter, source), points) in enumerate(sorted(groups.items())):
        configs = [c for c in CONFIGS if c in points]
        x = [CONFIGS.index(c) for c in configs]
        label = f"{model}" + (f" ({method})" if method else "") + (" [reported]" if source == "reported" else
                                                                    f" [{submitter}]")
        for column, style, suffix in ((0, "-", "mask AP"), (1, "--", "boundary AP")):
            values = [(xi, points[c][column]) for xi, c in zip(x, configs) if points[c][column] is not None]
            if values:
                axes.plot([v[0] for v in values], [v[1] for v in values], style, marker="o",
                          color=colours(index % 10), label=f"{label} {suffix}")
    axes.set_xticks(range(len(CONFIGS)), CONFIGS)
    axes.set_xlabel("training labels")
    axes.set_ylabel("AP on clean validation (%)")
    axes.set_title(f"{benchmark}: AP (solid) and Boundary AP (dashed) against noise level")
    axes.grid(alpha=0.3)
    if groups:
        axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    return figure


def submit_form(
    store: str | os.PathLike | Backend,
    user: str | None,
    file: Any,
    benchmark: str,
    trained_on: str,
    model_name: str,
    method: str = "",
    revision: str = "",
    paper_url: str = "",
    code_url: str = "",
    *,
    on_space: bool = False,
    evaluate: bool = True,
    limits: Limits = Limits(),
    sandbox: SandboxLimits = SandboxLimits(),
    cache_dir: str | os.PathLike | None = None,
) -> str:
    """What the submit tab does with its form: check and store the file as ``user`` (on a Space the signed-in
    Hub user, else the board's ``--submitter``; ``None`` refuses), then score it if ``evaluate``. Returns the
    Markdown status shown under the form: accepted with its scores, or refused with the rule and reason."""
    from .board import submit

    backend = open_backend(store)
    if not user:
        return ("**Not submitted:** sign in with your Hugging Face account first." if on_space else
                "**Not submitted:** this board was started without `--submitter`, so it is read-only.")
    if file is None:
        return "**Not submitted:** choose a results file (.json or .json.gz)."
    path = file if isinstance(file, (str, os.PathLike)) else getattr(file, "name", file)
    size = os.path.getsize(path)
    if size > limits.max_compressed_bytes:
        return f"**Rejected** (oversized): {size:,} bytes; the cap is {limits.max_compressed_bytes:,}"
    meta = SubmissionMeta(model_name=(model_name or "").strip(), benchmark=benchmark or "",
                          trained_on=trained_on or "", submitter=user, method=(method or "").strip(),
                          config_revision=(revision or "").strip(), paper_url=(paper_url or "").strip(),
                          code_url=(code_url or "").strip())
    try:
        with open(path, "rb") as handle:
            submission = submit(backend, handle.read(), meta, limits=limits, cache_dir=cache_dir)
    except SubmissionError as err:
        return f"**Rejected** ({err.kind}): {err}"
    message = f"**Accepted** as `{submission.id}` ({submission.detections} detections)."
    if not evaluate:
        return message + " It will be scored by the next evaluator run."
    records = {r["submission"]: r for r in evaluate_pending(backend, limits=sandbox, cache_dir=cache_dir)}
    record = records.get(submission.id)
    if record is None:
        return message + " Pending evaluation."
    if record["status"] != "done":
        return message + f" **Evaluation failed:** {record['reason']}"
    metrics = record["metrics"]
    return (message + f" **Evaluated:** mask AP {100 * metrics['segm']['AP']:.1f}, Boundary AP "
            f"{100 * metrics['boundary']['AP']:.1f}, box AP {100 * metrics['bbox']['AP']:.1f}.")


def build_app(
    store: str | os.PathLike | Backend,
    *,
    submitter: str | None = None,
    evaluate: bool = True,
    limits: Limits = Limits(),
    sandbox: SandboxLimits = SandboxLimits(),
    cache_dir: str | os.PathLike | None = None,
    on_space: bool | None = None,
) -> Any:
    """The board as a ``gr.Blocks``.

    Args:
        store: a store folder, ``hf://ORG`` or a :class:`~hf_noisy.leaderboard.storage.Backend`.
        submitter: locally, the user name submissions are made as (``None``: submitting is disabled). Ignored
            on a Space, where the logged-in Hub user submits.
        evaluate: score pending submissions right after each accepted one (in the sandbox).
        limits, sandbox: submission caps and evaluation budgets.
        on_space: force Space mode (default: ``SPACE_ID`` is set).
    """
    import gradio as gr

    backend = open_backend(store)
    on_space = bool(os.environ.get("SPACE_ID")) if on_space is None else on_space
    benchmarks = list(BENCHMARKS)
    settings = {"on_space": on_space, "evaluate": evaluate, "limits": limits, "sandbox": sandbox,
                "cache_dir": cache_dir}

    def tables(*filters: Any) -> list:
        rows = board_rows(backend)
        out = []
        for i, benchmark in enumerate(benchmarks):
            query, configs, sources = filters[3 * i: 3 * i + 3]
            out.append(filter_rows(rows.get(benchmark, []), query, configs, sources))
        return out

    def queue() -> Any:
        import pandas as pd

        rows = queue_rows(backend)
        return pd.DataFrame(rows, columns=["Submitted", "Benchmark", "Trained on", "Model", "Submitter", "State", "Id"])

    def plot(benchmark: str) -> Any:
        return robustness_figure(board_rows(backend).get(benchmark, []), benchmark)

    with gr.Blocks(title="hf-noisy leaderboard") as demo:
        gr.Markdown("# Noisy-label instance segmentation leaderboard\nCOCO-N, Cityscapes-N, LVIS-N and COCO-WAN "
                    "(Grad et al. 2024): train on a noise level, evaluate on clean validation labels.")
        filters: list = []
        frames: list = []
        with gr.Tab("Leaderboard"):
            refresh = gr.Button("Refresh", size="sm")
            for benchmark in benchmarks:
                with gr.Tab(benchmark):
                    with gr.Row():
                        query = gr.Textbox(label="Search model, method or submitter", scale=2)
                        configs = gr.CheckboxGroup(list(CONFIGS), value=list(CONFIGS), label="Trained on")
                        sources = gr.CheckboxGroup(["reported", "evaluated"], value=["reported", "evaluated"],
                                                   label="Source")
                    frame = gr.Dataframe(label=f"{benchmark} (AP in %, click a column to sort)", interactive=False,
                                         elem_id=f"table-{benchmark}", show_search="none", wrap=True,
                                         column_widths=list(COLUMN_WIDTHS))
                    filters += [query, configs, sources]
                    frames.append(frame)
        with gr.Tab("Robustness") as robustness_tab:
            which = gr.Dropdown(benchmarks, value=benchmarks[0], label="Benchmark")
            figure = gr.Plot(label="AP against noise level", elem_id="robustness-plot")
        with gr.Tab("Submit"):
            if on_space:
                gr.LoginButton()
                gr.Markdown("You submit as the Hugging Face user you are signed in as.")
            else:
                gr.Markdown(f"Submitting as **{submitter}** (set with `--submitter`)." if submitter else
                            "Started without `--submitter`: submitting is disabled.")
            upload = gr.File(label="Results file (.json or .json.gz)", file_types=[".json", ".gz"], type="filepath",
                             elem_id="results-file")
            with gr.Row():
                benchmark_in = gr.Dropdown(benchmarks, value=benchmarks[0], label="Benchmark")
                trained_on = gr.Dropdown(list(CONFIGS), value="clean", label="Trained on")
                revision = gr.Textbox(label="Config revision", placeholder="v1.0")
            with gr.Row():
                model_name = gr.Textbox(label="Model name", elem_id="model-name")
                method = gr.Textbox(label="Method", placeholder="CE, SCE, ...", elem_id="method")
            with gr.Row():
                paper_url = gr.Textbox(label="Paper URL")
                code_url = gr.Textbox(label="Code URL")
            send = gr.Button("Submit", variant="primary", elem_id="submit-button")
            status = gr.Markdown(elem_id="submit-status")
            queue_frame = gr.Dataframe(label="Submissions", interactive=False, elem_id="queue", wrap=True)
        with gr.Tab("About"):
            gr.Markdown(ABOUT)

        form = [upload, benchmark_in, trained_on, model_name, method, revision, paper_url, code_url]
        if on_space:
            # gradio passes the signed-in user to a parameter annotated gr.OAuthProfile (None when signed out).
            def handler(file, bench, config, name, meth, rev, paper, code,  # noqa: ANN001
                        profile: gr.OAuthProfile | None) -> tuple:
                return submit_form(backend, profile.username if profile else None, file, bench, config, name,
                                   meth, rev, paper, code, **settings), queue()
        else:
            def handler(file, bench, config, name, meth, rev, paper, code) -> tuple:  # noqa: ANN001
                return submit_form(backend, submitter, file, bench, config, name, meth, rev, paper, code,
                                   **settings), queue()

        send.click(handler, inputs=form, outputs=[status, queue_frame]).then(tables, inputs=filters, outputs=frames)
        robustness_tab.select(plot, inputs=which, outputs=figure)
        refresh.click(tables, inputs=filters, outputs=frames)
        for component in filters:
            component.change(tables, inputs=filters, outputs=frames)
        which.change(plot, inputs=which, outputs=figure)
        demo.load(tables, inputs=filters, outputs=frames)
        demo.load(queue, outputs=queue_frame)
        demo.load(plot, inputs=which, outputs=figure)
    return demo


def serve(store: str | os.PathLike | Backend, *, submitter: str | None = None, host: str = "127.0.0.1",
          port: int = 7860, evaluate: bool = True, **kwargs: Any) -> None:
    """Build the board and serve it until interrupted (``hf-noisy leaderboard serve``)."""
    build_app(store, submitter=submitter, evaluate=evaluate, **kwargs).launch(
        server_name=host, server_port=port, max_file_size=Limits().max_compressed_bytes, footer_links=[])


def main() -> None:
    """Space entry point: the store from ``HF_NOISY_STORE``, served on ``0.0.0.0:7860``."""
    store = os.environ.get("HF_NOISY_STORE")
    if not store:
        raise SystemExit("set HF_NOISY_STORE to the leaderboard store (hf://ORG or a folder)")
    serve(store, host="0.0.0.0", port=int(os.environ.get("PORT", "7860")))


if __name__ == "__main__":  # pragma: no cover
    main()
