"""Driving the browser page in Debian's Chromium (no downloaded browser), for the tests, make pictures
and make bench: build the site, serve a folder on loopback with or without the cross-origin
isolation headers, open a page in a fresh profile."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that reaches out: without the background-networking flags Chromium keeps
# trying the closed network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}
FIRST_DRAW = "document.body.dataset.drawn === '1' || !document.getElementById('error').hidden"


class BrowserMissing(RuntimeError):
    pass


def build_site(out: Path, model: Path | None = None) -> Path:
    """The page as make web builds it, into out (web/node_modules from make install)."""
    command = ["node", str(ROOT / "web" / "build.mjs"), "--out", str(out)]
    if model is not None:
        command += ["--model", str(model)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return out


class _Handler(http.server.SimpleHTTPRequestHandler):
    isolate = True

    def end_headers(self):
        if self.isolate:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        super().end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def static_site(folder: Path, isolate: bool = True) -> Iterator[str]:
    """folder on http://127.0.0.1:PORT/ (a plain static host; isolate: with COOP/COEP), its URL."""
    handler = type("Handler", (_Handler,), {"isolate": isolate})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(viewport: dict | None = None) -> Iterator:
    """A playwright browser context of Debian's Chromium, in a fresh profile folder."""
    if not CHROMIUM.is_file():
        raise BrowserMissing(f"{CHROMIUM} not found: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    profile = Path(tempfile.mkdtemp(prefix="cgan-chromium-"))
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=str(CHROMIUM),
                args=CHROMIUM_FLAGS,
                headless=True,
                viewport=viewport or {"width": 1100, "height": 760},
                accept_downloads=True,
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def open_page(context, url: str, timeout_ms: float = 60_000):
    """A new tab at url, once it has drawn its first picture or shown an error."""
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(FIRST_DRAW, timeout=timeout_ms)
    return page
