"""The Gradio board in headless Chromium (Playwright, Debian's /usr/bin/chromium): seeded rows render, a valid
submission becomes a row with the right AP, an invalid one shows its reason. Screenshots are kept in
``test-artifacts/leaderboard/`` (git-ignored). Skips without Chromium or Playwright, except under CI=true."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions

from hf_noisy.leaderboard import init_store, list_submissions, parse_benchmark_sources
from hf_noisy.metrics import evaluate_coco

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "leaderboard"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def _require_browser() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    for module in ("playwright", "gradio", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"the Python package {module}")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test, but it lacks {', '.join(missing)}")
        pytest.skip(f"browser test needs {', '.join(missing)}")


def _cells(page, table: str, model: str) -> list[str]:
    """The texts of the first data row showing ``model`` (gradio 6's grid: role=row / role=gridcell)."""
    row = page.locator(f"#{table} [role=row]").filter(has_text=model).first
    return [text.strip() for text in row.locator("[role=gridcell]").all_inner_texts()]


def test_the_board_in_a_browser(tmp_path: Path, free_port):
    _require_browser()
    from hf_noisy.coco import load_coco
    from hf_noisy.synthetic import make_shapes_coco
    from playwright.sync_api import expect, sync_playwright

    from hf_noisy.leaderboard.app import build_app
    from hf_noisy.leaderboard.table import COLUMNS

    # The built-in shapes dataset as the ground truth, so that CI runs this test without ../shared.
    gt_file = make_shapes_coco(tmp_path / "shapes", num_train=1, num_val=6) / "annotations" / "instances_val2017.json"
    gt = load_coco(gt_file, allow_empty_masks=True)
    store = tmp_path / "board"
    init_store(store, parse_benchmark_sources([f"coco-n={gt_file}"]))
    detections = predictions(gt, seed=7)
    valid, invalid = tmp_path / "valid.json", tmp_path / "invalid.json"
    valid.write_bytes(dumps(detections))
    invalid.write_bytes(dumps([dict(detections[0], score=1.5), *detections[1:]]))
    expected = evaluate_coco(gt, detections)
    mask_ap, boundary_ap = (round(100 * expected[name].stats["AP"], 1) for name in ("segm", "boundary"))
    assert mask_ap > 10

    shots = tmp_path / "screenshots"
    demo = build_app(store, submitter="alice", cache_dir=tmp_path / "cache")
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, footer_links=[])
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")

            # Seeded rows: the paper's Table 2 numbers, marked "reported".
            table = page.locator("#table-coco-n")
            expect(table).to_contain_text("Mask2Former R50", timeout=30_000)
            seeded = _cells(page, "table-coco-n", "Mask2Former R50")
            assert seeded[:4] == ["reported", "Mask2Former R50", "CE", "clean"]
            assert [float(seeded[COLUMNS.index(c)]) for c in ("Mask AP", "Boundary AP")] == [42.9, 30.0]
            page.screenshot(path=str(shots / "1-seeded.png"), full_page=True)

            # A valid submission: scored in the sandbox, its AP shown and its row in the table.
            page.get_by_role("tab", name="Submit").click()
            page.set_input_files("#results-file input[type=file]", str(valid))
            expect(page.locator("#results-file").get_by_role("cell", name="valid.json", exact=True)).to_be_visible()
            page.locator("#model-name textarea").fill("Browser M2F")
            page.locator("#method textarea").fill("SCE")
            page.locator("#submit-button").click()
            status = page.locator("#submit-status")
            expect(status).to_contain_text("Evaluated", timeout=60_000)
            assert f"mask AP {mask_ap:.1f}, Boundary AP {boundary_ap:.1f}" in status.inner_text()
            expect(page.locator("#queue")).to_contain_text("Browser M2F")
            page.screenshot(path=str(shots / "2-accepted.png"), full_page=True)

            page.get_by_role("tab", name="Leaderboard").click()
            expect(table).to_contain_text("Browser M2F")
            row = _cells(page, "table-coco-n", "Browser M2F")
            assert row[:4] == ["evaluated", "Browser M2F", "SCE", "clean"]
            assert float(row[COLUMNS.index("Mask AP")]) == mask_ap
            assert float(row[COLUMNS.index("Boundary AP")]) == boundary_ap
            page.screenshot(path=str(shots / "3-result-row.png"), full_page=True)
            # The filters: a search keeps the matching rows only; clearing it brings every row back.
            search = page.get_by_label("Search model, method or submitter").first
            search.fill("browser")
            expect(table).not_to_contain_text("Mask2Former R50")
            expect(table).to_contain_text("Browser M2F")
            search.fill("")
            expect(table).to_contain_text("Mask2Former R50")

            # An invalid submission: refused with its reason, nothing stored.
            page.get_by_role("tab", name="Submit").click()
            page.locator("#results-file button[aria-label='Clear']").first.click()
            page.set_input_files("#results-file input[type=file]", str(invalid))
            # (the file's name is drawn as two spans, stem and extension: match the cell's accessible name)
            expect(page.locator("#results-file").get_by_role("cell", name="invalid.json", exact=True)).to_be_visible()
            page.locator("#model-name textarea").fill("Bad scores")
            page.locator("#submit-button").click()
            expect(status).to_contain_text("Rejected", timeout=30_000)
            assert "(score): detection #0: score 1.5 must be a finite number in [0, 1]" in status.inner_text()
            page.screenshot(path=str(shots / "4-rejected.png"), full_page=True)

            page.get_by_role("tab", name="Robustness").click()
            expect(page.locator("#robustness-plot img")).to_be_visible(timeout=30_000)
            page.wait_for_function(  # gradio fades a component while its update is pending: shoot once it is opaque
                """() => { for (let e = document.querySelector('#robustness-plot img'); e; e = e.parentElement)
                             if (getComputedStyle(e).opacity !== '1') return false;
                           return true; }""", timeout=30_000)
            page.screenshot(path=str(shots / "5-robustness.png"), full_page=True)
            browser.close()
    finally:
        demo.close()
        if shots.is_dir():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for shot in shots.iterdir():
                shutil.copy(shot, ARTIFACTS / shot.name)
    assert [s.meta.model_name for s in list_submissions(store)] == ["Browser M2F"]
