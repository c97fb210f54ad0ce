"""The metric's Space: evaluate's metric widget for ``mask_boundary_ap``, runnable with ``python app.py``.

As ``evaluate.utils.launch_gradio_widget`` lays it out (a table with one column per input feature, one row per
image, each cell a JSON value; the scores out; the metric card below), written for gradio 5/6:
``launch_gradio_widget`` still calls gradio 3's ``gr.inputs``/``gr.outputs``, which gradio 4 removed.
"""

import json
import re
from pathlib import Path

HERE = Path(__file__).parent  # not resolved: in a Hub cache snapshot the files are links to blobs
EXAMPLE_HINT = ("One row per image. A predictions cell is a JSON object {\"masks\": [RLE], \"scores\": [...], "
                "\"labels\": [...]}; a references cell {\"image_id\", \"height\", \"width\", \"annotations\": [...]}.")


def compute_table(metric, table) -> dict:
    """The metric's ``compute`` on a widget table (a pandas DataFrame of JSON strings; empty rows skipped)."""
    names = list(metric.features)
    rows = [row for row in table[names].astype(str).itertuples(index=False) if all(cell.strip() for cell in row)]
    return metric.compute(**{name: [json.loads(row[i]) for row in rows] for i, name in enumerate(names)})


def card_text() -> str:
    """README.md without its YAML header (the widget's article, as evaluate's widget shows it)."""
    text = (HERE / "README.md").read_text(encoding="utf-8")
    return re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)


def widget(metric):
    """The gradio Interface of the widget."""
    import gradio as gr

    names = list(metric.features)
    return gr.Interface(
        fn=lambda table: json.dumps(compute_table(metric, table), indent=1),
        inputs=gr.Dataframe(headers=names, row_count=1, datatype=["str"] * len(names)),
        outputs=gr.Textbox(label=metric.name),
        title=f"Metric: {metric.name}",
        description=metric.info.description + "\n" + EXAMPLE_HINT,
        article=card_text(),
        flagging_mode="never",
    )


if __name__ == "__main__":
    import evaluate

    widget(evaluate.load(str(HERE / "mask_boundary_ap.py"))).launch()
