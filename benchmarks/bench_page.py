"""The browser page in headless Chromium (make bench's section on it): time from navigation to the
first digits, milliseconds per 16 digits and per "2026" (click to canvas), the bytes a first visit
transfers, on all threads and on one. Served by cgan-serve (the isolation headers, gzip)."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.markdown import table
from benchmarks.page_driver import build_site, chromium, open_page
from cgan_runtime.streams import print_or_exit

ROOT = Path(__file__).resolve().parents[1]
CGAN_SERVE = Path(sys.executable).parent / "cgan-serve"


def start_server(site: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [str(CGAN_SERVE), "--port", "0", "--web", str(site)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline()
    return process, "http://" + line.rsplit("http://", 1)[1].split()[0] + "/"


def first_visit(url: str) -> dict:
    """A fresh profile (nothing cached) loads the page: ms to the first digits, bytes by file."""
    with chromium() as context:
        page = context.new_page()
        transferred: dict[str, int] = {}

        def count(request):
            response = request.response()
            if response is not None:
                sizes = request.sizes()
                name = request.url.removeprefix(url) or "index.html"
                transferred[name] = sizes["responseBodySize"] + sizes["responseHeadersSize"]

        page.on("requestfinished", count)
        page.goto(url)
        page.wait_for_function("window.cganPage && window.cganPage.firstDrawMs !== undefined", timeout=60_000)
        ready = page.evaluate("cganPage.ready")
        first = page.evaluate("cganPage.firstDrawMs")
        page.close()
    return {"first_ms": first, "threads": ready["threads"], "bytes": transferred}


def drawing_ms(url: str, repeats: int) -> dict[str, float]:
    """Median click-to-canvas milliseconds of 16 digits and of "2026", after a warm-up."""
    with chromium() as context:
        page = open_page(context, url)
        timed = """async ([kind, repeats]) => {
            const times = [];
            for (let i = 0; i < repeats + 3; i++) {
                const started = performance.now();
                if (kind === "digits") await cganPage.drawDigits(i % 10, 16, i);
                else await cganPage.drawText("2026", i);
                times.push(performance.now() - started);
            }
            return times.slice(3);
        }"""
        result = {
            kind: statistics.median(page.evaluate(timed, [kind, repeats])) for kind in ("digits", "text")
        }
        page.close()
    return result


PARTS = {"ort/": "onnxruntime-web", "model/": "model"}  # by path; the rest is the page itself


def measure(site: Path, visits: int, repeats: int) -> list[tuple[str, str]]:
    """The report's two sections: (title, markdown)."""
    process, url = start_server(site)
    try:
        rows, transferred = [], {}
        for label, query in (("all threads", ""), ("1 thread", "?threads=1")):
            visited = [first_visit(url + query) for _ in range(visits)]
            transferred = transferred or visited[0]["bytes"]
            times = drawing_ms(url + query, repeats)
            first = statistics.median(visit["first_ms"] for visit in visited)
            cells = [f"{label} ({visited[0]['threads']})", f"{first:,.0f} ms"]
            cells += [f"{times['digits']:.1f} ms", f"{times['text']:.1f} ms"]
            rows.append(cells)
    finally:
        process.terminate()
        process.wait(30)
    speed = (
        f"Headless Chromium, the page served by cgan-serve on loopback. First digits: median of {visits} "
        "first visits (a fresh profile each: nothing cached), from navigation to the canvas. Drawing: "
        f"median of {repeats}, click to canvas, after 3 to warm up.\n\n"
        + table(["wasm threads", "first digits after page load", "16 digits", '"2026"'], rows)
    )
    return [
        ("The page in the browser (onnxruntime-web, int8 model)", speed),
        ("What a first visit to the page transfers", transfer_table(transferred)),
    ]


def transfer_table(transferred: dict[str, int]) -> str:
    parts = dict.fromkeys(["page", *PARTS.values()], 0)
    for name, size in transferred.items():
        part = next((part for prefix, part in PARTS.items() if name.startswith(prefix)), "page")
        parts[part] += size
    rows = [[part, f"{size / 1e6:.2f} MB"] for part, size in parts.items()]
    rows.append(["**first visit**", f"**{sum(parts.values()) / 1e6:.2f} MB**"])
    return table(["part", "transferred (gzip where the client takes it)"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for title, body in measure(build_site(Path(folder) / "site"), args.visits, args.repeats):
            print_or_exit(f"\n### {title}\n\n{body}", f"measured {title!r}", "it")


if __name__ == "__main__":
    main()
