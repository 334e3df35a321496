"""Request bodies held to a limit before the application sees them (an ASGI middleware): a body
announced or found larger than the limit is refused with 413 without being read further, a body
that does not arrive within the request timeout gets 408, and a gzip or deflate body (tritonclient
can compress its requests) is inflated to at most the same limit, so a small bomb stays small.
"""

from __future__ import annotations

import asyncio
import json
import zlib

# zlib's window bits: gzip's header and trailer, or the zlib format that HTTP calls "deflate".
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
# Each member's end copies the rest of the body (zlib's unused_data): a cap keeps a body of many
# tiny members from costing time that grows with its size squared, on the server's event loop.
MAX_GZIP_MEMBERS = 16


class BodyError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class BodyLimit:
    """Read the whole body of every request (up to max_bytes), inflate it if it is compressed, then
    hand it to the application."""

    def __init__(self, app, max_bytes: int, timeout_s: float):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        try:
            body = await asyncio.wait_for(self._read(headers, receive), self.timeout_s)
            body = _inflate(body, headers.get("content-encoding", "identity"), self.max_bytes)
        except BodyError as error:
            await _refuse(send, error.status, str(error))
            return
        except asyncio.TimeoutError:
            await _refuse(send, 408, f"the request body did not arrive within {self.timeout_s:g} s")
            return
        scope = {
            **scope,
            "headers": [(n, v) for n, v in scope["headers"] if n.lower() != b"content-encoding"],
        }
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # what comes after the body: a disconnect

        await self.app(scope, replay, send)

    async def _read(self, headers: dict[str, str], receive) -> bytes:
        announced = headers.get("content-length")
        if announced is not None:
            if not announced.isdigit():
                raise BodyError(f"Content-Length must be a whole number, got {announced!r}", 400)
            if int(announced) > self.max_bytes:
                raise BodyError(_too_large(int(announced), self.max_bytes), 413)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BodyError("the client went away before sending the whole body", 400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyError(_too_large(size, self.max_bytes, at_least=True), 413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _inflate(body: bytes, encoding: str, max_bytes: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ENCODINGS:
        raise BodyError(f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or none", 415)
    parts, size, rest = [], 0, body
    for _ in range(MAX_GZIP_MEMBERS):  # gzip: member after member (RFC 1952), as gzip -d reads them
        inflater = zlib.decompressobj(ENCODINGS[encoding])
        try:
            part = inflater.decompress(rest, max_bytes - size + 1)
        except zlib.error as error:
            raise BodyError(f"the body is not valid {encoding} data ({error})", 400) from None
        parts.append(part)
        size += len(part)
        if size > max_bytes:
            raise BodyError(_too_large(size, max_bytes, at_least=True, inflated=True), 413)
        if not inflater.eof:
            raise BodyError(f"the {encoding} body is cut short", 400)
        rest = inflater.unused_data
        if not rest.strip(b"\0"):  # the end, or the zeros that pad some gzip files (gzip -d skips them)
            return b"".join(parts)
        if encoding != "gzip":
            raise BodyError(f"the {encoding} body has {len(rest):,} bytes after its end", 400)
    raise BodyError(f"a gzip body of more than {MAX_GZIP_MEMBERS} members; send one", 400)


def _too_large(size: int, limit: int, at_least: bool = False, inflated: bool = False) -> str:
    what = "inflated body" if inflated else "body"
    over = "over" if at_least else "of"
    return f"a {what} {over} {size:,} bytes; this server takes at most {limit:,} (--max-body-bytes)"


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
