"""The paper on the board: every number of Tables 2, 5, 6 and 8 is a reported row, Tables 1, 3 and 4 are on the
protocol page, each number equal to ``shared/reference/paper/tables.json`` (read here, independently of
``tools/make_reported.py``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hf_noisy.leaderboard import board_rows, load_reported

LEVELS = {"clean": "clean", "easy": "easy", "mid": "medium", "hard": "hard"}
METRIC_COLUMNS = {"AP": "Mask AP", "APb": "Boundary AP", "boxAP": "Box AP"}


@pytest.fixture(scope="module")
def tables(shared_dir: Path) -> dict:
    path = shared_dir / "reference" / "paper" / "tables.json"
    if not path.is_file():
        pytest.skip(f"{path} not found (the paper's transcribed tables)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("number", [2, 5, 6, 8])
def test_every_number_of_the_table_is_on_the_board(tables: dict, number: int):
    rows = board_rows(None)
    table = tables[f"table_{number}"]
    checked = 0
    for paper_row in table["rows"]:
        method = paper_row.get("method", "CE")  # Tables 2, 5 and 6 train with the standard (CE) class loss
        for column, value in zip(table["columns"], paper_row["values"], strict=True):
            level, metric = column.split("_")
            (row,) = [r for r in rows[paper_row["benchmark"]] if r["Version"] == "paper"
                      and (r["Model"], r["Method"], r["Trained on"]) == (paper_row["model"], method, LEVELS[level])]
            assert row[METRIC_COLUMNS[metric]] == value, (number, paper_row, column)
            assert row["Source"] == "reported" and row["Submitter"] == "paper"
            assert re.search(rf"\bTables? (\d, )*{number}\b", row["Reference"]), row["Reference"]
            checked += 1
    assert checked == len(table["rows"]) * len(table["columns"])


def test_the_board_holds_nothing_the_paper_does_not_print(tables: dict):
    """Each reported number on the board comes from one of the four tables (no stray or stale seeds)."""
    printed = set()
    for number in (2, 5, 6, 8):
        table = tables[f"table_{number}"]
        for paper_row in table["rows"]:
            for column, value in zip(table["columns"], paper_row["values"], strict=True):
                level, metric = column.split("_")
                printed.add((paper_row["benchmark"], paper_row["model"], paper_row.get("method", "CE"),
                             LEVELS[level], METRIC_COLUMNS[metric], value))
    shown = {(benchmark, r["Model"], r["Method"], r["Trained on"], column, r[column])
             for benchmark, rs in board_rows(None).items() for r in rs for column in METRIC_COLUMNS.values()
             if r[column] is not None and r["Version"] == "paper"}
    assert shown == printed
    # every other reported row is the authors' later report, labelled as such (tests/test_fit.py checks its numbers)
    others = [r for rs in board_rows(None).values() for r in rs if r["Version"] != "paper"]
    assert others and {(r["Submitter"], r["Version"], r["Reference"]) for r in others} == {
        ("authors' later repository", "authors-later", "Later repository")}
    assert {benchmark for benchmark, *_ in shown} == {"coco-n", "cityscapes-n", "lvis-n", "coco-wan"}


def test_reported_retention_is_noisy_over_clean_ap_of_the_same_row():
    rows = {(r["Model"], r["Method"], r["Trained on"]): r for r in board_rows(None)["coco-n"]}
    sce_hard, sce_clean = rows["Mask R-CNN R50", "SCE", "hard"], rows["Mask R-CNN R50", "SCE", "clean"]
    assert sce_hard["Retention"] == round(100 * sce_hard["Mask AP"] / sce_clean["Mask AP"], 1)
    assert sce_hard["Boundary retention"] == round(100 * sce_hard["Boundary AP"] / sce_clean["Boundary AP"], 1)
    assert sce_clean["Retention"] is None


def _markdown_tables(markdown: str) -> dict[str, list[list[str]]]:
    """``{"Table N": rows of cells}`` of the protocol page's Markdown (header row first)."""
    out: dict[str, list[list[str]]] = {}
    current = None
    for line in markdown.splitlines():
        caption = re.match(r"\*\*(Table \d+)\.\*\*", line)
        if caption:
            current = caption.group(1)
            out[current] = []
        elif line.startswith("|") and not line.startswith("|---"):
            out[current].append([cell.strip() for cell in line.strip("|").split("|")])
    return out


def test_tables_1_3_and_4_are_on_the_protocol_page(tables: dict):
    from hf_noisy.leaderboard.app import protocol_markdown

    page = _markdown_tables(protocol_markdown())
    assert set(page) == {"Table 1", "Table 3", "Table 4"}
    as_shown = lambda values: [f"{v:.1f}" for v in values]  # noqa: E731 -- one decimal, as printed

    t1 = page["Table 1"][1:]
    assert [row[0] for row in t1] == [row["noise"] for row in tables["table_1"]["rows"]]
    assert [row[1:] for row in t1] == [as_shown(row["values"]) for row in tables["table_1"]["rows"]]
    t3 = page["Table 3"]
    assert t3[0][1::2] == [f"{c} box AP" for c in tables["table_3"]["columns"]]
    for shown, row in zip(t3[1:], tables["table_3"]["rows"], strict=True):
        assert shown[0] == row["model"]
        assert shown[1::2] == as_shown(row["box"]) and shown[2::2] == as_shown(row["mask"])
    t4 = page["Table 4"][1:]
    assert [row[0] for row in t4] == [row["labels"] for row in tables["table_4"]["rows"]]
    assert [row[1:] for row in t4] == [as_shown(row["values"]) for row in tables["table_4"]["rows"]]
    # the transcription's caveats travel with the numbers
    assert load_reported()["notes"] == tables["notes"]


def test_the_authors_later_numbers_are_a_second_source_beside_v1():
    """Mask2Former R50 on COCO-N: the v1 paper's mask AP and the authors' later repository's, two labelled rows per
    level (not one row that conflicts), both in the default view, retention computed within each source."""
    from hf_noisy.leaderboard.table import default_view

    rows = [r for r in default_view(board_rows(None)["coco-n"]) if (r["Model"], r["Method"]) == ("Mask2Former R50", "CE")]
    by_source = {(r["Submitter"], r["Trained on"]): r for r in rows}
    assert len(by_source) == len(rows) == 8
    v1 = {level: by_source["paper", level]["Mask AP"] for level in ("clean", "easy", "medium", "hard")}
    later = {level: by_source["authors' later repository", level]["Mask AP"] for level in ("clean", "easy", "medium", "hard")}
    assert v1 == {"clean": 42.9, "easy": 41.7, "medium": 39.9, "hard": 37.4}
    assert later == {"clean": 42.9, "easy": 33.5, "medium": 30.1, "hard": 26.7}
    hard = by_source["authors' later repository", "hard"]
    assert hard["Source"] == "reported" and hard["Version"] == "authors-later" and hard["Reference"] == "Later repository"
    assert hard["Retention"] == round(100 * 26.7 / 42.9, 1) and hard["Boundary AP"] is None
    assert by_source["paper", "hard"]["Reference"] == "Tables 2, 5"
    table = next(t for t in load_reported()["tables"] if t.get("reported_by"))
    assert "later" in table["source"] and "not in arXiv:2406.10891 v1" in table["source"]
