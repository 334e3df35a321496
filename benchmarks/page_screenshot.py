"""make pictures: a screenshot of the browser page as a first visit shows it (the README's picture),
taken in headless Chromium from a freshly built site."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.page_driver import build_site, chromium, open_page, static_site
from cgan_runtime.files import atomic_path


def screenshot(out: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        site = build_site(Path(folder) / "site")
        with static_site(site) as url, chromium(viewport={"width": 1000, "height": 640}) as context:
            page = open_page(context, url)
            if page.is_visible("#error"):
                raise SystemExit(f"page_screenshot: the page shows an error: {page.inner_text('#error')}")
            picture = page.screenshot(type="png", full_page=True)
    with atomic_path(out) as temporary:
        temporary.write_bytes(picture)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/pictures/page.png"))
    screenshot(parser.parse_args().out)


if __name__ == "__main__":
    main()
