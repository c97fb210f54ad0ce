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

import contextlib
import logging
import os
from typing import Any, Iterator

from ..benchmarks import CONFIGS, board_ids, detections_per_image
from ..errors import HfNoisyError
from ..metrics import DEFAULT_DILATION_RATIO
from .evaluator import evaluate_pending
from .hosted import parse_hosted
from .queue import CheckGate, EvaluatorLoop
from .uploads import DIRECT_UPLOAD_BYTES, UPLOAD_CACHE, SignedInUploads, signed_in
from .policy import Limits, SandboxLimits, limits_text
from .storage import Backend, open_backend
from .submission import SubmissionError, SubmissionMeta
from .table import COLUMNS, PUBLISHED_VERSION, board_rows, default_view, load_reported, queue_rows

__all__ = ["build_app", "filter_rows", "launch_options", "main", "protocol_markdown", "robustness_figure", "serve", "styled",
           "submit_form"]

log = logging.getLogger(__name__)

#: Widths of the table's columns (:data:`~hf_noisy.leaderboard.table.COLUMNS`), in pixels: wide enough for each
#: header's longest word, so a header wraps between words, never inside one.
COLUMN_WIDTHS = (96, 160, 80, 76, 60, 88, 56, 60, 60, 92, 92, 96, 80, 112)
#: Columns of the submit tab's queue (:func:`~hf_noisy.leaderboard.table.queue_rows`) and their widths in pixels.
QUEUE_COLUMNS = ("Submitted", "Benchmark", "Trained on", "Model", "Submitter", "State", "Id")
QUEUE_WIDTHS = (230, 110, 90, 160, 110, 200, 300)
#: Columns holding numbers (percent), shown with one decimal.
NUMBER_COLUMNS = ("Mask AP", "Boundary AP", "Box AP", "Mask AP50", "Mask AP75", "Retention", "Boundary retention")
#: Passed to ``launch(css=...)``: table headers wrap at spaces only, never inside a word.
CSS = """
.board-table th, .board-table th * { word-break: keep-all !important; overflow-wrap: normal !important;
                                     hyphens: none !important; }
"""

_ABOUT = """\
## Protocol

Models are **trained on one config** of a benchmark (`clean`, `easy`, `medium` or `hard`: the noise levels of
Grad et al. 2024, Table 7, or COCO-WAN's weak annotations) and **evaluated on the clean validation split**,
always: the paper measures what noisy *training* labels cost, against clean labels.

* **Mask AP**, **Boundary AP** (Boundary IoU, dilation ratio {dilation}; IoU = min(mask IoU, boundary IoU)) and
  **box AP**, COCO rules (AP at IoU 0.50:0.95, at most {coco_dets} detections per image) for COCO-N, Cityscapes-N and
  COCO-WAN; LVIS rules for LVIS-N (federated negatives, {lvis_dets} detections per image, APr/APc/APf). The numbers
  equal `hf-noisy evaluate --annotations VAL.json --predictions RESULTS.json --json`.
* **Retention** (%) = AP of a model trained on a noisy config / AP of the same model name (same submitter)
  trained on `clean`: how much of its clean AP a method keeps under noise. **Boundary retention**: the same
  with Boundary AP.
* Rows marked **reported** are the paper's published numbers (each with its tables: mask and Boundary AP from
  Tables 2, 6 and 8, box AP from Table 5; SCE is the symmetric cross-entropy of Table 8); rows marked
  **evaluated** were scored here from submitted predictions. Reported rows whose submitter is **authors' later
  repository** are the numbers the authors' later code repository gives for its own COCO-N (made by a newer
  generator): a second source beside the paper's v1 numbers, with its own version label, not comparable row for
  row with v1.
* **Version**: the benchmark version a row was scored against (`paper` for reported rows). Only rows scored on
  the full published benchmark (`{published}`) are comparable with the paper's; rows scored on anything else
  (`custom`: a subset of the source, e.g. coco-tiny or `--max-images`; another seed; a COCO file) are hidden unless "Show custom
  builds" is ticked.

## Submitting

A COCO results file, `.json` or `.json.gz`: a list of
`{"image_id", "category_id", "segmentation": {"size": [h, w], "counts": "..."}, "score"}` (optional `"bbox"`),
with the image ids of the benchmark's clean validation split, the source dataset's category ids and scores
in [0, 1]. Files are parsed as JSON only (never pickle or YAML), after size, gzip and nesting caps; every
detection is checked before anything is stored. One submission per model name, benchmark and config per
user; a few submissions per user per day. Each submission is checked and scored in a separate process with
CPU-time and memory limits, streaming the file, so a complete validation submission fits:

{limits}
"""


def _fill(template: str, **values: object) -> str:
    """``template`` with each ``{name}`` replaced (its other braces, JSON examples, kept)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


ABOUT = _fill(_ABOUT, published=PUBLISHED_VERSION, limits=limits_text(), dilation=f"{DEFAULT_DILATION_RATIO:g}",
              coco_dets=detections_per_image("coco"), lvis_dets=detections_per_image("lvis"))


def filter_rows(rows: list[dict], query: str = "", configs: list[str] | None = None,
                sources: list[str] | None = None, custom: bool = True) -> Any:
    """Rows as a pandas DataFrame (columns :data:`COLUMNS`), keeping those whose model, method or submitter
    contains ``query`` (case-insensitive), trained on one of ``configs``, from one of ``sources``, and (unless
    ``custom``) only :func:`~hf_noisy.leaderboard.table.default_view` rows."""
    import pandas as pd

    query = (query or "").strip().lower()
    kept = [row for row in (rows if custom else default_view(rows))
            if (not query or any(query in str(row[key]).lower() for key in ("Model", "Method", "Submitter")))
            and (configs is None or row["Trained on"] in configs)
            and (sources is None or row["Source"] in sources)]
    return pd.DataFrame(kept, columns=list(COLUMNS))


def _one_decimal(value: Any) -> str:
    return "" if value is None or value != value else f"{value:.1f}"  # value != value: NaN


def styled(frame: Any) -> Any:
    """``frame`` for display: numbers with one decimal (``30.0``, not ``30``), missing ones blank. The values
    stay numbers, so a click on a column still sorts numerically."""
    return frame.style.format({column: _one_decimal for column in NUMBER_COLUMNS if column in frame.columns})


def table_note(rows: list[dict], shown: int, benchmark: str) -> str:
    """The line under a benchmark's table: ``no entries yet`` for an empty benchmark, else what is shown."""
    if not rows:
        return f"**{benchmark}: no entries yet.**"
    hidden = len(rows) - len(default_view(rows))
    return (f"{shown} of {len(rows)} rows shown" if shown else "No rows match these filters") + (
        f"; {hidden} scored on a custom build (not the published {PUBLISHED_VERSION}), shown with "
        "\"Show custom builds\"" if hidden else "") + "."


def protocol_markdown(reported: dict | None = None) -> str:
    """The paper's protocol tables (1, 3 and 4 of ``reported.json``) as Markdown, each with its caption."""
    reported = load_reported() if reported is None else reported
    parts = []
    for table in reported["protocol"]:
        cells = [[_markdown_cell(c) for c in row] for row in table["rows"]]
        parts.append("\n".join([f"**{table['table']}.** {table['caption']}.", "",
                                "| " + " | ".join(table["header"]) + " |",
                                "|" + "|".join(["---"] + ["---:"] * (len(table["header"]) - 1)) + "|",
                                *("| " + " | ".join(row) + " |" for row in cells)]))
    return "\n\n".join(parts)


def _markdown_cell(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value).replace("|", "\\|")


def _plain(text: str) -> str:
    """``text`` safe to draw: anything that does not encode (a lone surrogate) as an escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def robustness_figure(rows: list[dict], benchmark: str) -> Any:
    """Mask AP (solid, circles) and Boundary AP (dashed, squares) against the training config, one colour per
    model. Only measured points are drawn; a line joins two points only where the configs are adjacent (a
    missing level leaves a gap). Both legends (models, and which line is which metric) sit outside the axes,
    and every text is drawn as plain text (no mathtext: ``$`` is a dollar sign)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    groups: dict[tuple, dict[str, tuple]] = {}
    for row in rows:
        key = (row["Model"], row["Method"], row["Submitter"], row["Source"])
        groups.setdefault(key, {})[row["Trained on"]] = (row["Mask AP"], row["Boundary AP"])
    figure = Figure(figsize=(11, 5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    colours = matplotlib.colormaps["tab10" if len(groups) <= 10 else "tab20"]
    model_handles = []
    styles = (("mask AP", "-", "o"), ("Boundary AP", "--", "s"))
    for index, ((model, method, submitter, source), points) in enumerate(sorted(groups.items())):
        colour = colours(index % colours.N)
        label = _plain(f"{model} ({', '.join(filter(None, [method, submitter]))})")
        for column, (metric, style, marker) in enumerate(styles):
            # NaN where a level was not measured: matplotlib breaks the line there and draws no marker
            y = [points[c][column] if c in points and points[c][column] is not None else float("nan")
                 for c in CONFIGS]
            if any(v == v for v in y):
                axes.plot(range(len(CONFIGS)), y, linestyle=style, marker=marker, color=colour,
                          label=f"{label} {metric}")
        model_handles.append(Line2D([], [], color=colour, linewidth=3, label=label))
    axes.set_xticks(range(len(CONFIGS)), CONFIGS)
    axes.set_xlim(-0.3, len(CONFIGS) - 0.7)
    axes.set_xlabel("training labels", parse_math=False)
    axes.set_ylabel("AP on clean validation (%)", parse_math=False)
    axes.set_title(_plain(f"{benchmark}: mask AP and Boundary AP against the noise level"), parse_math=False)
    axes.grid(alpha=0.3)
    if groups:
        metric_legend = axes.legend(
            handles=[Line2D([], [], color="black", linestyle=style, marker=marker, label=metric)
                     for metric, style, marker in styles],
            title="metric", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title_fontsize=8)
        axes.add_artist(metric_legend)
        axes.legend(handles=model_handles, title="model (method, submitter)", loc="upper left",
                    bbox_to_anchor=(1.01, 0.78), fontsize=8, title_fontsize=8)
        for legend in (metric_legend, axes.get_legend()):
            for text in [*legend.get_texts(), legend.get_title()]:
                text.set_parse_math(False)
    else:
        axes.text(0.5, 0.5, "no entries yet", transform=axes.transAxes, ha="center", va="center", parse_math=False)
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
    sandbox: SandboxLimits | None = None,
    cache_dir: str | os.PathLike | None = None,
    gate: CheckGate | None = None,
    pending_note: str = "It will be scored by the next evaluator run.",
    reference: str = "",
) -> str:
    """What the submit tab does with its form: check and store the file as ``user`` (on a Space the signed-in
    Hub user, else the board's ``--submitter``; ``None`` refuses), holding one of ``gate``'s check slots while
    it checks, then score it here if ``evaluate`` (the app never does: its :class:`~.queue.EvaluatorLoop`
    scores). Returns the Markdown status shown under the form: accepted (with its scores when scored here), or
    refused with the rule and reason (also when the board itself cannot check it, e.g. its ground truth is
    unreachable: never a bare error). ``pending_note`` ends an accepted, unscored one's answer. ``reference``:
    a results file on the Hub (``hf://datasets/USER/REPO@COMMIT/PATH``, :mod:`.hosted`), used instead of
    ``file``."""
    import contextlib

    from .board import submit

    backend = open_backend(store)
    if not user:
        return ("**Not submitted:** sign in with your Hugging Face account first." if on_space else
                "**Not submitted:** this board was started without `--submitter`, so it is read-only.")
    if (reference or "").strip():
        try:
            upload = parse_hosted(reference)
        except SubmissionError as err:
            return f"**Rejected** ({err.kind}): {_plain(str(err))}"
    elif file is None:
        return ("**Not submitted:** give the results file on the Hub (hf://datasets/USER/REPO@COMMIT/FILE) or "
                "choose a small file (.json or .json.gz).")
    else:
        upload = file if isinstance(file, (str, os.PathLike)) else getattr(file, "name", file)
        size, cap = os.path.getsize(upload), limits.for_benchmark(benchmark or "").max_compressed_bytes
        if size > cap:
            return f"**Rejected** (oversized): {size:,} bytes; the cap is {cap:,}"
    meta = SubmissionMeta(model_name=(model_name or "").strip(), benchmark=benchmark or "",
                          trained_on=trained_on or "", submitter=user, method=(method or "").strip(),
                          config_revision=(revision or "").strip(), paper_url=(paper_url or "").strip(),
                          code_url=(code_url or "").strip())
    try:
        with gate.slot(user) if gate is not None else contextlib.nullcontext():
            submission = submit(backend, upload, meta, limits=limits, cache_dir=cache_dir)
    except SubmissionError as err:
        return f"**Rejected** ({err.kind}): {_plain(str(err))}"
    except Exception as err:  # noqa: BLE001 -- the browser gets the reason, the log the traceback
        log.exception("leaderboard: could not check a submission")
        return f"**Not submitted:** the board could not check it ({_reason(err)})"
    message = f"**Accepted** as `{submission.id}` " + (
        f"({submission.detections} detections)." if submission.complete else
        f"(the first {submission.detections} detections checked; the rest is checked when it is scored).")
    if not evaluate:
        return f"{message} {pending_note}"
    try:
        records = {r["submission"]: r for r in evaluate_pending(backend, limits=sandbox, cache_dir=cache_dir)}
    except Exception as err:  # noqa: BLE001 -- stored; a later evaluator run scores it
        log.exception("leaderboard: evaluation failed")
        return message + f" **Not evaluated yet** ({_reason(err)}); it stays pending."
    record = records.get(submission.id)
    if record is None:
        return message + " Pending evaluation."
    if record["status"] != "done":
        return message + f" **Evaluation failed:** {record['reason']}"
    metrics = record["metrics"]
    return (message + f" **Evaluated:** mask AP {100 * metrics['segm']['AP']:.1f}, Boundary AP "
            f"{100 * metrics['boundary']['AP']:.1f}, box AP {100 * metrics['bbox']['AP']:.1f}.")


@contextlib.contextmanager
def _removed(file: str | None) -> Iterator[None]:
    """Delete gradio's cached copy of an upload once the submit is done with it (the store keeps its own)."""
    try:
        yield
    finally:
        if file:
            with contextlib.suppress(OSError):
                os.remove(file)


def launch_options(*, on_space: bool, submitter: str | None) -> dict[str, Any]:
    """``launch()`` arguments that guard the upload door: gradio's ``max_file_size``
    (:data:`~.uploads.DIRECT_UPLOAD_BYTES`) and the :class:`~.uploads.SignedInUploads` middleware (a Space: a signed-in user;
    locally: only a board with a ``submitter``)."""
    from starlette.middleware import Middleware

    allowed = signed_in if on_space else (lambda scope: submitter is not None)
    return {"max_file_size": DIRECT_UPLOAD_BYTES,
            "app_kwargs": {"middleware": [Middleware(SignedInUploads, allowed=allowed)]}}


def _reason(err: BaseException) -> str:
    """What a visitor is told about an unexpected failure: hf-noisy's own one-line message, or only the kind of
    error for anything else (its details, which may name server internals, go to the board's log)."""
    if isinstance(err, HfNoisyError):
        return _plain((str(err).strip().splitlines() or [""])[0][:300])
    return f"{type(err).__name__}; the details are in the board's log"


def build_app(
    store: str | os.PathLike | Backend,
    *,
    submitter: str | None = None,
    evaluate: bool = True,
    limits: Limits = Limits(),
    sandbox: SandboxLimits | None = None,
    cache_dir: str | os.PathLike | None = None,
    on_space: bool | None = None,
    evaluator: EvaluatorLoop | None = None,
    gate: CheckGate | None = None,
) -> Any:
    """The board as a ``gr.Blocks``. A submit only checks and stores (holding one of ``gate``'s check slots,
    default :class:`~.queue.CheckGate`'s) and wakes ``evaluator``; nothing is scored inside a request.

    Args:
        store: a store folder, ``hf://ORG`` or a :class:`~hf_noisy.leaderboard.storage.Backend`.
        submitter: locally, the user name submissions are made as (``None``: submitting is disabled). Ignored
            on a Space, where the logged-in Hub user submits.
        evaluate: say that accepted submissions are scored as they arrive (by ``evaluator``, which the caller
            starts and stops: :func:`serve` does) rather than by the next evaluator run.
        limits, sandbox: submission caps and evaluation budgets (size caps and budgets left ``None``: each
            benchmark's, see :mod:`.policy`).
        on_space: force Space mode (default: ``SPACE_ID`` is set).
    """
    import gradio as gr

    backend = open_backend(store)
    on_space = bool(os.environ.get("SPACE_ID")) if on_space is None else on_space
    benchmarks = list(board_ids())
    gate = gate or CheckGate()
    settings = {"on_space": on_space, "evaluate": False, "limits": limits, "sandbox": sandbox,
                "cache_dir": cache_dir, "gate": gate}
    if evaluate:
        settings["pending_note"] = "It is queued for scoring: its row appears once it is scored (Refresh)."

    def accepted(message: str) -> str:
        """The form's answer; the evaluator is woken for an accepted submission."""
        if evaluator is not None and message.startswith("**Accepted**"):
            evaluator.wake()
        return message
    per_table = 4  # filters per benchmark table: search, configs, sources, custom builds

    def tables(*filters: Any) -> list:
        rows = board_rows(backend)
        frames, notes = [], []
        for i, benchmark in enumerate(benchmarks):
            query, configs, sources, custom = filters[per_table * i: per_table * (i + 1)]
            frame = filter_rows(rows.get(benchmark, []), query, configs, sources, custom)
            frames.append(styled(frame))
            notes.append(table_note(rows.get(benchmark, []), len(frame), benchmark))
        return frames + notes

    def queue() -> Any:
        import pandas as pd

        rows = queue_rows(backend)
        return pd.DataFrame(rows, columns=list(QUEUE_COLUMNS))

    def plot(benchmark: str, custom: bool) -> Any:
        rows = board_rows(backend).get(benchmark, [])
        return robustness_figure(rows if custom else default_view(rows), benchmark)

    with gr.Blocks(title="hf-noisy leaderboard", delete_cache=UPLOAD_CACHE) as demo:
        gr.Markdown("# Noisy-label instance segmentation leaderboard\nCOCO-N, Cityscapes-N, LVIS-N and COCO-WAN "
                    "(Grad et al. 2024): train on a noise level, evaluate on clean validation labels. AP in %.")
        filters: list = []
        frames: list = []
        notes: list = []
        with gr.Tab("Leaderboard"):
            refresh = gr.Button("Refresh", size="sm")
            for benchmark in benchmarks:
                with gr.Tab(benchmark):
                    with gr.Row():
                        query = gr.Textbox(label="Search model, method or submitter", scale=2)
                        configs = gr.CheckboxGroup(list(CONFIGS), value=list(CONFIGS), label="Trained on")
                        sources = gr.CheckboxGroup(["reported", "evaluated"], value=["reported", "evaluated"],
                                                   label="Source")
                        custom = gr.Checkbox(False, label="Show custom builds",
                                             info=f"rows not scored on the full published {PUBLISHED_VERSION}")
                    frame = gr.Dataframe(label=f"{benchmark} (AP in %, click a column to sort)", interactive=False,
                                         elem_id=f"table-{benchmark}", elem_classes=["board-table"],
                                         show_search="none", wrap=True, column_widths=list(COLUMN_WIDTHS),
                                         headers=list(COLUMNS), max_height=1400)
                    notes.append(gr.Markdown(elem_id=f"note-{benchmark}"))
                    filters += [query, configs, sources, custom]
                    frames.append(frame)
        with gr.Tab("Robustness") as robustness_tab:
            with gr.Row():
                which = gr.Dropdown(benchmarks, value=benchmarks[0], label="Benchmark", elem_id="robustness-benchmark")
                plot_custom = gr.Checkbox(False, label="Show custom builds")
            figure = gr.Plot(label="AP against noise level", elem_id="robustness-plot")
        with gr.Tab("Submit"):
            if on_space:
                gr.LoginButton(elem_id="login-button")
                gr.Markdown("You submit as the Hugging Face user you are signed in as.")
            else:
                gr.Markdown(f"Submitting as **{submitter}** (set with `--submitter`)." if submitter else
                            "Started without `--submitter`: submitting is disabled.")
            reference = gr.Textbox(label="Results file on the Hub (push it with `hf-noisy leaderboard upload-results`)",
                                   placeholder="hf://datasets/USER/REPO@COMMIT/hard.json.gz", elem_id="results-ref")
            upload = gr.File(label=f"... or a small file (.json or .json.gz, at most {DIRECT_UPLOAD_BYTES >> 20} MB"
                             f"{', signed in' if on_space else ''})", file_types=[".json", ".gz"], type="filepath",
                             elem_id="results-file")
            with gr.Row():
                benchmark_in = gr.Dropdown(benchmarks, value=benchmarks[0], label="Benchmark")
                trained_on = gr.Dropdown(list(CONFIGS), value="clean", label="Trained on")
                revision = gr.Textbox(label="Config revision", placeholder=PUBLISHED_VERSION)
            with gr.Row():
                model_name = gr.Textbox(label="Model name", elem_id="model-name")
                method = gr.Textbox(label="Method", placeholder="CE, SCE, ...", elem_id="method")
            with gr.Row():
                paper_url = gr.Textbox(label="Paper URL")
                code_url = gr.Textbox(label="Code URL")
            send = gr.Button("Submit", variant="primary", elem_id="submit-button")
            status = gr.Markdown(elem_id="submit-status")
            queue_frame = gr.Dataframe(label="Submissions", interactive=False, elem_id="queue", wrap=True,
                                       elem_classes=["board-table"], headers=list(QUEUE_COLUMNS),
                                       column_widths=list(QUEUE_WIDTHS))
        with gr.Tab("About"):
            gr.Markdown(ABOUT)
            gr.Markdown("## The paper's other tables\n\nNot benchmarks of this board (they train on noise "
                        "applied differently), but the protocol's evidence: one spatial noise at a time (Table 1), "
                        "class noise alone (Table 3), and foreground-background segmentation (Table 4).\n\n"
                        + protocol_markdown(), elem_id="protocol-tables")

        form = [reference, upload, benchmark_in, trained_on, model_name, method, revision, paper_url, code_url]
        if on_space:
            def handler(ref, file, bench, config, name, meth, rev, paper, code, profile) -> tuple:  # noqa: ANN001
                with _removed(file):
                    return accepted(submit_form(backend, profile.username if profile else None, file, bench, config,
                                                name, meth, rev, paper, code, reference=ref, **settings)), queue()

            # gradio passes the signed-in user (None when signed out) to a parameter whose type hint is
            # gr.OAuthProfile | None. Set as an object: this module's annotations are strings, and gradio's
            # typing.get_type_hints cannot resolve "gr" (imported in this function), so it would pass nothing.
            handler.__annotations__["profile"] = gr.OAuthProfile | None
        else:
            def handler(ref, file, bench, config, name, meth, rev, paper, code) -> tuple:  # noqa: ANN001
                with _removed(file):
                    return accepted(submit_form(backend, submitter, file, bench, config, name, meth, rev, paper,
                                                code, reference=ref, **settings)), queue()

        outputs = frames + notes
        # Submits run side by side (the gate bounds the checks; gradio's own limit is 1 per event by default),
        # so one slow check never holds up another submitter's answer.
        send.click(handler, inputs=form, outputs=[status, queue_frame],
                   concurrency_limit=gate.slots + gate.waiting).then(tables, inputs=filters, outputs=outputs)
        robustness_tab.select(plot, inputs=[which, plot_custom], outputs=figure)
        refresh.click(tables, inputs=filters, outputs=outputs)
        for component in filters:
            component.change(tables, inputs=filters, outputs=outputs)
        which.change(plot, inputs=[which, plot_custom], outputs=figure)
        plot_custom.change(plot, inputs=[which, plot_custom], outputs=figure)
        demo.load(tables, inputs=filters, outputs=outputs)
        demo.load(queue, outputs=queue_frame)
        demo.load(plot, inputs=[which, plot_custom], outputs=figure)
    return demo


def serve(store: str | os.PathLike | Backend, *, submitter: str | None = None, host: str = "127.0.0.1",
          port: int = 7860, evaluate: bool = True, **kwargs: Any) -> None:
    """Build the board and serve it until interrupted (``hf-noisy leaderboard serve``), with an
    :class:`~.queue.EvaluatorLoop` scoring pending submissions beside it when ``evaluate``."""
    backend = open_backend(store)
    evaluator = None
    if evaluate:
        evaluator = EvaluatorLoop(lambda: evaluate_pending(backend, limits=kwargs.get("sandbox"),
                                                          cache_dir=kwargs.get("cache_dir"))).start()
        evaluator.wake()  # what a restart left pending
    try:
        on_space = kwargs.pop("on_space", None)
        on_space = bool(os.environ.get("SPACE_ID")) if on_space is None else on_space
        build_app(backend, submitter=submitter, evaluate=evaluate, evaluator=evaluator, on_space=on_space,
                  **kwargs).launch(server_name=host, server_port=port, footer_links=[], css=CSS,
                                   **launch_options(on_space=on_space, submitter=submitter))
    finally:
        if evaluator is not None:
            evaluator.stop(timeout=5)


def main() -> None:
    """Space entry point: the store from ``HF_NOISY_STORE``, served on ``GRADIO_SERVER_NAME`` (default
    ``0.0.0.0``) port ``PORT`` (default 7860). On a Space (``SPACE_ID`` set) submitters sign in with OAuth."""
    store = os.environ.get("HF_NOISY_STORE")
    if not store:
        raise SystemExit("set HF_NOISY_STORE to the leaderboard store (hf://ORG or a folder)")
    serve(store, host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), port=int(os.environ.get("PORT", "7860")))


if __name__ == "__main__":  # pragma: no cover
    main()
