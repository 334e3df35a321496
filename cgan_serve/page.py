"""The browser page (`make web` builds it into web/dist) at /, and the server's own model beside it,
so that the page draws what the server draws. Both go out with the cross-origin isolation headers
that onnxruntime-web needs to run wasm on more than one thread; a file with a gzip twin (the build
writes one for the 15 MB wasm) goes out compressed to a client that accepts it."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.datastructures import Headers
from starlette.staticfiles import StaticFiles

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}
MODEL_ROUTE = "/model/cgan_generator.onnx"  # where the page asks for its model (web/src/page.js)
BUILT_PAGE = Path(__file__).resolve().parents[1] / "web" / "dist"  # in a checkout, after make web


class PageError(ValueError):
    """The folder given as the page is not a built page."""


def default_page() -> Path | None:
    """The checkout's built page, when cgan-serve runs from a checkout where make web has run."""
    return BUILT_PAGE if (BUILT_PAGE / "index.html").is_file() else None


def checked_page(folder: Path) -> Path:
    if not (folder / "index.html").is_file():
        what = "not found" if not folder.exists() else "has no index.html"
        raise PageError(f"{folder}: {what}; build the page with make web (it writes web/dist)")
    return folder


def mount_page(app: FastAPI, folder: Path, model_path: Path) -> None:
    """The page at /: a path no endpoint has is looked for in folder. (The router's default, not a
    mount at /: a mount would take a path an endpoint has with another method, which is a 405.)"""

    async def model():
        return FileResponse(model_path, media_type="application/octet-stream", headers=ISOLATION_HEADERS)

    app.add_api_route(MODEL_ROUTE, model, methods=["GET", "HEAD"], include_in_schema=False)

    app.router.default = _Precompressed(directory=folder, html=True)


class _Precompressed(StaticFiles):
    """Static files with the isolation headers, and NAME.gz for NAME where the client takes gzip."""

    async def get_response(self, path: str, scope):
        accepts_gzip = "gzip" in Headers(scope=scope).get("accept-encoding", "")
        if accepts_gzip and not path.endswith(".gz"):
            full_path, stat = self.lookup_path(path + ".gz")
            if stat is not None and os.path.isfile(full_path):
                media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
                headers = {**ISOLATION_HEADERS, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
                return FileResponse(full_path, stat_result=stat, media_type=media_type, headers=headers)
        response = await super().get_response(path, scope)
        response.headers.update(ISOLATION_HEADERS)
        return response
