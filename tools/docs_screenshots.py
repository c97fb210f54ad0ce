"""Screenshots of the docs site, taken with the system Chromium through Playwright (downloads no browser).

    python tools/docs_screenshots.py --out /work/docs-shots                       # home + two guide pages
    python tools/docs_screenshots.py --out shots --pages "" tutorials/noise/ tutorials/score/

Builds the site with ``mkdocs build --strict`` into a temporary folder (or uses ``--site DIR``), serves it on
127.0.0.1 and saves ``<out>/<page>.png`` for each page (``""`` is the home page; ``--full-page`` for the whole
page, else the first screen). Chromium runs headless with a fresh profile, no GPU, no background networking.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PAGES = ["", "guide/noise/", "concepts/noise-model/"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def build_site(site: Path) -> None:
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)], cwd=REPO,
                   check=True)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # no line per request
        pass


def screenshots(site: Path, pages: list[str], out: Path, *, chromium: str, full_page: bool,
                width: int = 1280, height: int = 900) -> list[Path]:
    from playwright.sync_api import sync_playwright

    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        with tempfile.TemporaryDirectory(prefix="docs-shots-profile-") as profile, sync_playwright() as play:
            context = play.chromium.launch_persistent_context(
                profile, executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height})
            try:
                page = context.new_page()
                for path in pages:
                    page.goto(f"http://127.0.0.1:{server.server_port}/{path}", wait_until="networkidle")
                    name = path.strip("/").replace("/", "-") or "home"
                    target = out / f"{name}.png"
                    page.screenshot(path=str(target), full_page=full_page)
                    written.append(target)
            finally:
                context.close()
    finally:
        server.shutdown()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--pages", nargs="+", default=DEFAULT_PAGES, help="site paths ('' is the home page)")
    parser.add_argument("--site", type=Path, help="an already built site (default: build one)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the browser's executable")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not only the first screen")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="docs-site-") as tmp:
        site = args.site
        if site is None:
            site = Path(tmp) / "site"
            build_site(site)
        for path in screenshots(site, args.pages, args.out, chromium=args.chromium, full_page=args.full_page):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
