"""Write ``hf_noisy/leaderboard/reported.json`` from the paper's transcribed tables.

Usage: ``python tools/make_reported.py ../shared/reference/paper/tables.json``

Tables 2, 5, 6 and 8 become board entries (one per model, method and training config, each naming its
table); Tables 1, 3 and 4 become protocol tables (header and rows, shown on the board's About tab). Numbers are
copied as printed, never re-derived. ``tests/test_leaderboard_reported.py`` checks the shipped file against
``tables.json`` number by number.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "hf_noisy" / "leaderboard" / "reported.json"
#: tables.json's level prefixes -> the benchmark configs
LEVELS = {"clean": "clean", "easy": "easy", "mid": "medium", "hard": "hard"}


def _entries(table: dict) -> list[dict]:
    """Board entries of a mask AP / Boundary AP table (2, 6, 8) or a box AP table (5)."""
    out = []
    for row in table["rows"]:
        by_level: dict[str, dict] = {}
        for column, value in zip(table["columns"], row["values"], strict=True):
            level, metric = column.split("_")
            key = {"AP": "segm_AP", "APb": "boundary_AP", "boxAP": "bbox_AP"}[metric]
            by_level.setdefault(LEVELS[level], {})[key] = value
        for config, values in by_level.items():
            out.append({"benchmark": row["benchmark"], "model_name": row["model"], "method": row.get("method", "CE"),
                        "trained_on": config, **values})
    return out


def _protocol(tables: dict) -> list[dict]:
    t1, t3, t4 = tables["table_1"], tables["table_3"], tables["table_4"]
    severity = [c.split("_")[0] for c in t1["columns"][::2]]
    return [
        {"table": "Table 1", "caption": t1["caption"],
         "header": ["Noise", *(f"{s} {m}" for s in severity for m in ("mask AP", "Boundary AP"))],
         "rows": [[row["noise"], *row["values"]] for row in t1["rows"]]},
        {"table": "Table 3", "caption": t3["caption"],
         "header": ["Model", *(f"{c} {m}" for c in t3["columns"] for m in ("box AP", "mask AP"))],
         "rows": [[row["model"], *(v for pair in zip(row["box"], row["mask"], strict=True) for v in pair)]
                  for row in t3["rows"]]},
        {"table": "Table 4", "caption": t4["caption"],
         "header": ["Training labels", "box AP", "mask AP", "Boundary AP"],
         "rows": [[row["labels"], *row["values"]] for row in t4["rows"]]},
    ]


#: The authors' later numbers (their later code repository, with the noise_annotations_v2.py generator): a
#: second reported source beside the v1 paper's, with its own label (Submitter) and version on the board.
LATER = {
    "table": "Later repository",
    "caption": "Mask2Former R50 on COCO-N (mask AP) as the authors' later code repository reports it",
    "source": "the authors' later code repository (noise_annotations_v2.py generator), as quoted in hf-noisy issue 26; "
              "not in arXiv:2406.10891 v1",
    "reported_by": "authors' later repository",
    "version": "authors-later",
    "entries": [{"benchmark": "coco-n", "model_name": "Mask2Former R50", "method": "CE", "trained_on": config,
                 "segm_AP": value}
                for config, value in (("clean", 42.9), ("easy", 33.5), ("medium", 30.1), ("hard", 26.7))],
}


def _dumps(reported: dict) -> str:
    """Indented JSON with one line per entry or table row (readable diffs when a number is corrected)."""
    text = json.dumps(reported, indent=1, ensure_ascii=False)
    # innermost objects and lists (no nested brackets) on one line each
    return re.sub(r"[\[{][^\[\]{}]*[\]}]", lambda m: re.sub(r"\s*\n\s*", " ", m.group(0)), text) + "\n"


def main(tables_json: str) -> None:
    tables = json.loads(Path(tables_json).read_text(encoding="utf-8"))
    source = "Grad et al. 2024, arXiv:2406.10891 v1"
    reported = {
        "format": 2,
        "paper": {"title": "Benchmarking Label Noise in Instance Segmentation: Spatial Noise Matters",
                  "authors": "Grad, Kimhi, Halika, Baskin", "year": 2024, "url": tables["url"]},
        "units": "percent: segm_AP and boundary_AP (mask AP and Boundary AP), bbox_AP (box AP), all on the clean "
                 "validation split",
        "generated_by": "tools/make_reported.py from the paper's tables as transcribed in "
                        "shared/reference/paper/tables.json (numbers as printed)",
        "notes": tables["notes"],
        "tables": [{"table": f"Table {n}", "caption": tables[f"table_{n}"]["caption"], "source": f"{source}, Table {n}",
                    "entries": _entries(tables[f"table_{n}"])} for n in (2, 5, 6, 8)] + [LATER],
        "protocol": _protocol(tables),
    }
    OUT.write_text(_dumps(reported), encoding="utf-8")
    print(f"wrote {OUT}: {sum(len(t['entries']) for t in reported['tables'])} entries, "
          f"{len(reported['protocol'])} protocol tables")


if __name__ == "__main__":
    main(*sys.argv[1:])
