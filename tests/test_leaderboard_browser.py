"""The Gradio board in headless Chromium (Playwright, Debian's /usr/bin/chromium): seeded rows render, a valid
submission becomes a row with the right AP, an invalid one shows its reason; every tab with the paper's full
tables; the Space (``SPACE_ID``) with its OAuth sign-in. Screenshots are kept in ``test-artifacts/leaderboard/``
(git-ignored). Skips without Chromium or Playwright, except under CI=true."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _leaderboard import dumps, predictions, session_cookie

from hf_noisy.leaderboard import (board_rows, evaluate_pending, init_store, list_results, list_submissions,
                                  parse_benchmark_sources)
from hf_noisy.leaderboard.queue import EvaluatorLoop
from hf_noisy.metrics import evaluate_coco

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "leaderboard"
# (Playwright gives every launch a fresh temporary profile: it refuses a --user-data-dir of our own.)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
BENCHMARKS = ("coco-n", "cityscapes-n", "lvis-n", "coco-wan")
#: The words of a table's headers that the browser drew on more than one line (a header broken inside a word)
#: or past the right edge of their column (clipped).
BROKEN_WORDS = """(table) => {
  const broken = [];
  for (const span of document.querySelectorAll(`#${table} th span.header`)) {
    const right = span.closest('th').getBoundingClientRect().right;
    for (const node of span.childNodes) {
      if (node.nodeType !== Node.TEXT_NODE) continue;
      for (const match of node.textContent.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const rects = [...range.getClientRects()];
        const tops = new Set(rects.map((r) => Math.round(r.top)));
        if (tops.size > 1 || rects.some((r) => r.right > right + 0.5)) broken.push(match[0]);
      }
    }
  }
  return broken;
}"""
#: True once the robustness plot is a new image (not ``previous``, its last src) and no element around it is
#: faded (gradio fades a component while it updates).
PLOT_SETTLED = """(previous) => { const img = document.querySelector('#robustness-plot img');
                          if (!img || !img.complete || img.src === previous) return false;
                          for (let e = img; e; e = e.parentElement)
                            if (getComputedStyle(e).opacity !== '1') return false;
                          return true; }"""


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


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _cells(page, table: str, model: str) -> list[str]:
    """The texts of the first data row showing ``model`` (gradio 6's grid: role=row / role=gridcell)."""
    row = page.locator(f"#{table} [role=row]").filter(has_text=model).first
    return [text.strip() for text in row.locator("[role=gridcell]").all_inner_texts()]


def _uploaded(page, name: str):
    """The upload's file cell (its name is drawn as two spans, stem and extension: match the accessible name)."""
    return page.locator("#results-file").get_by_role("cell", name=name, exact=True)


def _shapes_store(tmp_path: Path) -> tuple[Path, dict]:
    """A store whose coco-n ground truth is the built-in shapes dataset (CI runs this without ../shared)."""
    from hf_noisy.coco import load_coco
    from hf_noisy.synthetic import make_shapes_coco

    gt_file = make_shapes_coco(tmp_path / "shapes", num_train=1, num_val=6) / "annotations" / "instances_val2017.json"
    store = tmp_path / "board"
    init_store(store, parse_benchmark_sources([f"coco-n={gt_file}"]))
    return store, load_coco(gt_file, allow_empty_masks=True)


def _wait_scored(store, count: int = 1, timeout: float = 120) -> None:
    """Wait until the store holds ``count`` results (the app's evaluator loop scores in the background)."""
    deadline = time.monotonic() + timeout
    while len(list_results(store)) < count:
        assert time.monotonic() < deadline, "the evaluator loop did not score the submission"
        time.sleep(0.5)


def _launch(demo, port: int) -> None:
    from hf_noisy.leaderboard.app import CSS

    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, footer_links=[],
                css=CSS)


@pytest.mark.slow
def test_the_board_in_a_browser(tmp_path: Path, free_port):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from hf_noisy.leaderboard.app import build_app
    from hf_noisy.leaderboard.table import COLUMNS

    store, gt = _shapes_store(tmp_path)
    detections = predictions(gt, seed=7)
    valid, invalid = tmp_path / "valid.json", tmp_path / "invalid.json"
    valid.write_bytes(dumps(detections))
    invalid.write_bytes(dumps([dict(detections[0], score=1.5), *detections[1:]]))
    expected = evaluate_coco(gt, detections)
    mask_ap, boundary_ap = (round(100 * expected[name].stats["AP"], 1) for name in ("segm", "boundary"))
    assert mask_ap > 10

    evaluator = EvaluatorLoop(lambda: evaluate_pending(store, cache_dir=tmp_path / "cache")).start()
    demo = build_app(store, submitter="alice", cache_dir=tmp_path / "cache", evaluator=evaluator)
    port = free_port()
    _launch(demo, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")

            # Seeded rows: the paper's Table 2 numbers, marked "reported", with one decimal ("30.0").
            table = page.locator("#table-coco-n")
            expect(table).to_contain_text("Mask2Former R50", timeout=30_000)
            seeded = _cells(page, "table-coco-n", "Mask2Former R50")
            assert seeded[:4] == ["reported", "Mask2Former R50", "CE", "clean"]
            assert [seeded[COLUMNS.index(c)] for c in ("Mask AP", "Boundary AP", "Box AP")] == ["42.9", "30.0", "45.7"]
            _shot(page, "1-seeded")

            # A valid submission: checked and queued by the request, scored by the evaluator loop (never inside
            # the request), its AP in its row once scored.
            page.get_by_role("tab", name="Submit").click()
            page.set_input_files("#results-file input[type=file]", str(valid))
            expect(_uploaded(page, "valid.json")).to_be_visible(timeout=30_000)
            page.locator("#model-name textarea").fill("Browser M2F")
            page.locator("#method textarea").fill("SCE")
            page.locator("#submit-button").click()
            status = page.locator("#submit-status")
            expect(status).to_contain_text("queued for scoring", timeout=60_000)
            assert status.inner_text().startswith("Accepted as coco-n/clean/alice/")
            expect(page.locator("#queue")).to_contain_text("Browser M2F")
            _shot(page, "2-accepted")
            _wait_scored(store)

            # Scored on a COCO file (not the published build): marked custom, shown only when asked for.
            page.get_by_role("tab", name="Leaderboard").click()
            page.get_by_role("button", name="Refresh").click()
            note = page.locator("#note-coco-n")
            expect(note).to_contain_text("1 scored on a custom build")
            expect(table).not_to_contain_text("Browser M2F")
            page.get_by_label("Show custom builds").first.check()
            expect(table).to_contain_text("Browser M2F", timeout=30_000)
            row = _cells(page, "table-coco-n", "Browser M2F")
            assert row[:4] == ["evaluated", "Browser M2F", "SCE", "clean"]
            assert row[COLUMNS.index("Version")] == "custom"
            assert row[COLUMNS.index("Mask AP")] == f"{mask_ap:.1f}"
            assert row[COLUMNS.index("Boundary AP")] == f"{boundary_ap:.1f}"
            _shot(page, "3-result-row")
            # The filters: a search keeps the matching rows only; clearing it brings every row back.
            search = page.get_by_label("Search model, method or submitter").first
            search.fill("browser")
            expect(table).not_to_contain_text("Mask2Former R50")
            expect(table).to_contain_text("Browser M2F")
            search.fill("zzz")
            expect(note).to_contain_text("No rows match these filters")
            search.fill("")
            expect(table).to_contain_text("Mask2Former R50")

            # An invalid submission: refused with its reason, nothing stored.
            page.get_by_role("tab", name="Submit").click()
            page.locator("#results-file button[aria-label='Clear']").first.click()
            page.set_input_files("#results-file input[type=file]", str(invalid))
            expect(_uploaded(page, "invalid.json")).to_be_visible(timeout=30_000)
            page.locator("#model-name textarea").fill("Bad scores")
            page.locator("#submit-button").click()
            expect(status).to_contain_text("Rejected", timeout=30_000)
            assert "(score): detection #0: score 1.5 must be a finite number in [0, 1]" in status.inner_text()
            _shot(page, "4-rejected")
            browser.close()
    finally:
        demo.close()
        evaluator.stop(timeout=60)
    assert [s.meta.model_name for s in list_submissions(store)] == ["Browser M2F"]


@pytest.mark.slow
def test_a_failing_check_shows_its_reason_in_the_browser(tmp_path: Path, free_port):
    """The store's ground truth has gone (moved, deleted): the status says why, not a bare red "Error"."""
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from hf_noisy.leaderboard.app import build_app

    store, gt = _shapes_store(tmp_path)
    results = tmp_path / "results.json"
    results.write_bytes(dumps(predictions(gt, seed=3)))
    gt_file = tmp_path / "shapes" / "annotations" / "instances_val2017.json"
    gt_file.rename(gt_file.with_suffix(".moved"))
    demo = build_app(store, submitter="alice", cache_dir=tmp_path / "cache")
    port = free_port()
    _launch(demo, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.get_by_role("tab", name="Submit").click()
            page.set_input_files("#results-file input[type=file]", str(results))
            expect(_uploaded(page, "results.json")).to_be_visible(timeout=30_000)
            page.locator("#model-name textarea").fill("M")
            page.locator("#submit-button").click()
            status = page.locator("#submit-status")
            expect(status).to_contain_text("Not submitted", timeout=30_000)
            assert "instances_val2017.json: no such file" in status.inner_text()
            assert page.get_by_text("Error", exact=True).count() == 0
            _shot(page, "5-check-failed")
            browser.close()
    finally:
        demo.close()
    assert list_submissions(store) == []


@pytest.mark.slow
def test_every_tab_with_the_paper_tables(tmp_path: Path, free_port):
    """Every benchmark's table, every robustness plot, the submit and about tabs, with all the paper's rows, an
    evaluated row and a stored record with a lone surrogate in its name (skipped, not fatal)."""
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    from hf_noisy.leaderboard import evaluate_pending, list_results, submit
    from hf_noisy.leaderboard.app import build_app
    from hf_noisy.leaderboard.submission import SubmissionMeta

    store, gt = _shapes_store(tmp_path)
    submit(store, dumps(predictions(gt, seed=5)), SubmissionMeta("Shapes M2F", "coco-n", "clean", submitter="bob",
                                                                 method="SCE"))
    evaluate_pending(store, cache_dir=tmp_path / "cache")
    (good_id, good), = list_results(store).items()
    bad = store / "results" / f"{good_id}-surrogate.json"
    bad.write_text(json.dumps(dict(good, meta=dict(good["meta"], model_name="\ud800"))))  # as the JSON escape
    reported = board_rows(None)

    demo = build_app(store, submitter="alice", cache_dir=tmp_path / "cache")
    port = free_port()
    _launch(demo, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            for benchmark in BENCHMARKS:
                page.get_by_role("tab", name=benchmark, exact=True).click()
                table = page.locator(f"#table-{benchmark}")
                rows = reported[benchmark]
                expect(table).to_contain_text(rows[-1]["Model"], timeout=30_000)
                expect(page.locator(f"#note-{benchmark}")).to_contain_text(f"{len(rows)} of ")
                assert page.locator(f"#table-{benchmark} [role=row]").count() == len(rows) + 1  # + the header row
                assert page.evaluate(BROKEN_WORDS, f"table-{benchmark}") == []
                _shot(page, f"tab-{benchmark}")
            page.get_by_role("tab", name="coco-n", exact=True).click()
            expect(page.locator("#table-coco-n")).not_to_contain_text("Shapes M2F")  # a custom build: hidden
            page.get_by_label("Show custom builds").first.check()
            expect(page.locator("#table-coco-n")).to_contain_text("Shapes M2F", timeout=30_000)
            _shot(page, "tab-coco-n-custom")

            page.get_by_role("tab", name="Robustness").click()
            shown = None
            for benchmark in BENCHMARKS:
                if benchmark != BENCHMARKS[0]:
                    page.locator("#robustness-benchmark input").click()
                    page.get_by_role("option", name=benchmark, exact=True).click()
                expect(page.locator("#robustness-plot img")).to_be_visible(timeout=30_000)
                page.wait_for_function(PLOT_SETTLED, arg=shown, timeout=30_000)  # this benchmark's plot
                shown = page.locator("#robustness-plot img").get_attribute("src")
                _shot(page, f"robustness-{benchmark}")

            page.get_by_role("tab", name="Submit").click()
            expect(page.locator("#queue")).to_contain_text("Shapes M2F")
            assert page.evaluate(BROKEN_WORDS, "queue") == []
            _shot(page, "submit")
            page.get_by_role("tab", name="About").click()
            protocol = page.locator("#protocol-tables")
            for caption in ("Table 1.", "Table 3.", "Table 4."):
                expect(protocol).to_contain_text(caption)
            expect(protocol).to_contain_text("approximation")
            # The per-benchmark limits: LVIS-N takes a complete LVIS val submission.
            expect(page.get_by_role("row").filter(has_text="lvis-n")).to_contain_text("4,096 MiB")
            _shot(page, "about")
            browser.close()
    finally:
        demo.close()


@pytest.mark.slow
def test_the_space_signs_in_with_hugging_face(tmp_path: Path, free_port, hub):
    """``main()`` as a Space runs it (``SYSTEM=spaces``, ``SPACE_ID``, OAuth variables): it starts, shows the
    sign-in button, refuses a signed-out submission, and submits as the signed-in user a small file and a
    results file hosted in the user's own repo on the (loopback) Hub, both scored by the Space's evaluator."""
    _require_browser()
    pytest.importorskip("authlib", reason="gradio[oauth] (the leaderboard extra) is not installed")
    from playwright.sync_api import expect, sync_playwright

    from hf_noisy.leaderboard.hosted import upload_results

    store, gt = _shapes_store(tmp_path)
    results = tmp_path / "results.json"
    results.write_bytes(dumps(predictions(gt, seed=11)))
    hosted = tmp_path / "hard.json"
    hosted.write_bytes(dumps(predictions(gt, seed=12)))
    reference = str(upload_results(hosted, "carol-hf/m2f-results",
                                   token=hub.server.add_user("carol-hf", "hf_carol_token")))
    port, secret = free_port(), "space-oauth-secret"
    env = dict(os.environ, SYSTEM="spaces", SPACE_ID="noisy-seg/leaderboard",
               OAUTH_CLIENT_ID="test-client", OAUTH_CLIENT_SECRET=secret, OAUTH_SCOPES="openid profile",
               OPENID_PROVIDER_URL="http://127.0.0.1:9", HF_NOISY_STORE=str(store), GRADIO_SERVER_NAME="127.0.0.1",
               PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", HF_HOME=str(tmp_path / "hf"))
    log = (tmp_path / "space.log").open("wb")
    space = subprocess.Popen([sys.executable, "-c", "from hf_noisy.leaderboard.app import main; main()"],
                             env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert space.poll() is None, (tmp_path / "space.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "space.log").read_text()[-3000:]
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(url, wait_until="networkidle")
            page.get_by_role("tab", name="Submit").click()
            login = page.locator("#login-button")
            expect(login).to_contain_text("Sign in with Hugging Face", timeout=30_000)
            # Signed out: no upload is taken (the upload door answers 401 before it reads a byte), so a
            # signed-out visitor submits a Hub reference, and is asked to sign in.
            page.locator("#results-ref textarea").fill(f"hf://datasets/carol-hf/results@{'0' * 40}/r.json")
            page.locator("#model-name textarea").fill("Space M2F")
            page.locator("#submit-button").click()
            status = page.locator("#submit-status")
            expect(status).to_contain_text("sign in with your Hugging Face account first", timeout=30_000)
            _shot(page, "space-signed-out")

            # Signed in: the session gradio's OAuth callback writes, for the user "carol-hf". (A Space serves
            # https and its cookie is Secure; over this plain-http loopback Chromium keeps it only without the
            # flag. The server reads the same signed value either way.)
            context.add_cookies([{"name": "session", "value": session_cookie(secret, "carol-hf"), "url": url,
                                  "sameSite": "Lax", "httpOnly": True}])
            page.reload(wait_until="networkidle")
            page.get_by_role("tab", name="Submit").click()
            expect(login).to_contain_text("carol-hf", timeout=30_000)  # gradio's "Logout (carol-hf)"
            page.locator("#results-ref textarea").fill("")
            page.set_input_files("#results-file input[type=file]", str(results))
            expect(_uploaded(page, "results.json")).to_be_visible(timeout=30_000)
            page.locator("#model-name textarea").fill("Space M2F")
            page.locator("#submit-button").click()
            expect(status).to_contain_text("queued for scoring", timeout=90_000)
            assert "coco-n/clean/carol-hf/" in status.inner_text()
            _wait_scored(store)  # by the Space's evaluator loop
            _shot(page, "space-signed-in")

            # A results file on the Hub, by its reference: size from the API, streamed, never stored here.
            page.locator("#results-file button[aria-label='Clear']").first.click()
            page.locator("#results-ref textarea").fill(reference)
            page.locator("#model-name textarea").fill("Space M2F Hub")
            page.locator("#submit-button").click()
            expect(status).to_contain_text("coco-n/clean/carol-hf/", timeout=90_000)
            expect(status).to_contain_text("queued for scoring")
            _wait_scored(store, 2)
            page.get_by_role("tab", name="Leaderboard").click()
            page.get_by_role("button", name="Refresh").click()
            page.get_by_label("Show custom builds").first.check()
            expect(page.locator("#table-coco-n")).to_contain_text("Space M2F Hub", timeout=30_000)
            _shot(page, "space-hub-reference")
            browser.close()
    finally:
        space.terminate()
        space.wait(timeout=30)
        log.close()
    uploaded, referenced = sorted(list_submissions(store), key=lambda item: item.meta.model_name)
    assert uploaded.meta.submitter == "carol-hf" and uploaded.meta.model_name == "Space M2F"
    assert referenced.meta.model_name == "Space M2F Hub" and referenced.hosted == reference
    records = list_results(store)
    assert records[uploaded.id]["status"] == records[referenced.id]["status"] == "done"
    expected = evaluate_coco(gt, predictions(gt, seed=12))["segm"].stats
    assert records[referenced.id]["metrics"]["segm"] == expected
    assert not list(store.rglob("*.json.gz"))[1:]  # the uploaded file only: the Hub file is not kept
