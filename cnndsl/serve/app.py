"""The playground's HTTP face: a Starlette application, served by uvicorn (cli/serve.py).

It is a local tool, and the page is the only client it expects, so it refuses everything else:
- requests whose Host is not one of the names it was started for (a DNS-rebinding page gets 400);
- POSTs that are not JSON, or that come from a page of another origin (a cross-site form gets 403);
- bodies larger than MAX_BODY (413), before they are read whole;
- file names not in the listing of the shipped specs or of FOLDER; saves anywhere but FOLDER.
Work that takes the processor (checking, drawing, compiling, running) runs in worker threads; compiling
and running, which can take memory, one or two at a time (HEAVY).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cnndsl import __version__
from cnndsl.errors import CnnDslError
from cnndsl.serve import work

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 32 << 20  # /api/maps: an image of MAX_IMAGE_BYTES, base64-encoded, with its spec
MAX_TEXT_BODY = 1 << 20  # every other request: a spec (at most 64 KB) and a few fields, JSON-escaped
BIG_BODIES = ("/api/maps",)
MAX_WAITING = 8  # compiles and runs queued behind the HEAVY running ones (each holds its body); more get 503
MAX_WAITING_DRAWINGS = 64  # diagrams queued (small bodies: a classroom's worth of open Diagram tabs)
TOKEN_HEADER = "x-cnndsl-token"
LOCAL_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
HEAVY = 2  # compiles and runs at once; the others wait in the event loop, holding no worker thread
DRAWING = 2  # Graphviz runs at once, likewise
LOG = logging.getLogger("cnndsl.serve")

# The page's own files only: no inline script, nothing from elsewhere. CodeMirror writes style elements.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class BodyLimit:
    """413 for a request body over its path's limit (``limit`` for BIG_BODIES, MAX_TEXT_BODY for the rest): by
    its Content-Length, or while it streams in."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.big = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.big if scope["path"] in BIG_BODIES else min(self.big, MAX_TEXT_BODY)
        for key, value in scope["headers"]:
            if key == b"content-length" and (not value.isdigit() or int(value) > limit):
                return await _too_large(limit)(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
            return message

        try:
            return await self.app(scope, limited, send)
        except _TooLarge:
            return await _too_large(limit)(scope, receive, send)


class _TooLarge(Exception):
    pass


def _too_large(limit: int) -> Response:
    return JSONResponse({"error": {"message": f"the request is larger than {limit:,} bytes",
                                   "hint": "send a smaller image or spec"}}, status_code=413)


class SameOrigin:
    """POSTs must be JSON from this page: a form or a fetch from another site's page is refused, so no
    other site can make the playground compile, run or save (CSRF); browsers send Origin with POSTs."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            origin, host = headers.get("origin"), headers.get("host", "")
            try:
                foreign = origin is not None and urlsplit(origin).netloc != host
            except ValueError:  # `http://[` : no origin a browser sends
                foreign = True
            if foreign:
                return await _refuse("a request from another site's page", 403)(scope, receive, send)
            if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return await _refuse("the playground takes JSON requests", 415)(scope, receive, send)
        return await self.app(scope, receive, send)


class Token:
    """Every /api/ request carries the token the playground printed in its address (as Jupyter's does): other
    users of a shared machine, and any page that reached the port, cannot read or write FOLDER without it."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if self.token is not None and scope["type"] == "http" and scope["path"].startswith("/api/"):
            given = dict(scope["headers"]).get(TOKEN_HEADER.encode(), b"").decode("latin-1")
            if not hmac.compare_digest(given, self.token):
                return await _refuse("this playground's token is missing or wrong", 403,
                                     "open the address cnndsl serve printed, with its ?token=")(scope, receive, send)
        return await self.app(scope, receive, send)


def _refuse(message: str, status: int, hint: str | None = None) -> Response:
    return JSONResponse({"error": {"message": message, "hint": hint}}, status_code=status)


def _error(exc: CnnDslError, status: int = 422) -> JSONResponse:
    return JSONResponse({"error": work.diagnostic(exc)}, status_code=status)


async def _body(request: Request) -> dict:
    body = await request.body()
    try:
        data = await run_in_threadpool(json.loads, body) if len(body) > 65536 else json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise CnnDslError("the request is not JSON this page sends", hint="the page sends a flat JSON object") from None
    if not isinstance(data, dict):
        raise CnnDslError("the request is not a JSON object", hint="the page sends an object")
    return data


def _text(data: dict, key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise CnnDslError(f"'{key}' must be a string", hint="the page sends text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (\ud800) that JSON can spell and UTF-8 cannot
        raise CnnDslError(f"'{key}' is not valid Unicode text", hint="the page sends text") from None
    return value


def _spec_name(data: dict) -> str:
    name = data.get("name") or "playground.cnn"
    return name if isinstance(name, str) and work.SPEC_NAME.fullmatch(name) else "playground.cnn"


def create_app(folder: str | Path | None = None, hosts: tuple[str, ...] = LOCAL_NAMES,
               token: str | None = None) -> Starlette:
    """The playground for the specs of ``folder`` (which it may save to) and the shipped ones, answering
    requests addressed to ``hosts`` that carry ``token`` (None: no token, for tests of the rest)."""
    root = Path(folder).resolve() if folder is not None else None
    shipped = work.shipped_folder()

    def where(kind: str) -> Path:
        if kind == "shipped":
            return shipped
        if kind == "folder" and root is not None:
            return root
        raise CnnDslError(f"no spec folder '{kind}'", hint="shipped, or folder when started with a FOLDER")

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def info(request: Request) -> Response:
        return JSONResponse({"version": __version__, "folder": str(root) if root else None,
                             "shipped": work.listing(shipped), "specs": work.listing(root),
                             **work.language()})

    async def spec(request: Request) -> Response:
        folder = where(request.path_params["where"])
        text = await run_in_threadpool(work.read, folder, request.path_params["name"])
        return JSONResponse({"text": text, "sha256": work.digest(text)})

    async def check(request: Request) -> Response:
        data = await _body(request)
        return JSONResponse(await run_in_threadpool(work.check, _text(data, "text"), _spec_name(data)))

    async def diagram(request: Request) -> Response:
        data = await _body(request)
        depth = data.get("depth", -1)
        if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < -1 or depth == 0):
            raise CnnDslError("depth must be a positive whole number, -1 (fit) or null (every layer)")
        return JSONResponse(await limited("drawing", work.diagram, _text(data, "text"), _spec_name(data), depth))

    async def compile_(request: Request) -> Response:
        data = await _body(request)
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 32:
            raise CnnDslError("seed must be a whole number from 0 to 2**32 - 1")
        name = _spec_name(data)
        model = await heavy(work.compile_model, _text(data, "text"), name, seed)
        file = name[:-len(".cnn")] + ".onnx"
        return Response(model, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{file}"'})

    async def maps(request: Request) -> Response:
        data = await _body(request)
        try:
            image = base64.b64decode(_text(data, "image"), validate=True)
        except binascii.Error:
            raise CnnDslError("the image is not base64", hint="the page sends the file's bytes") from None
        scale = _text(data, "scale", "layer")
        if scale not in ("layer", "map"):
            raise CnnDslError(f"unknown colour scale '{scale}'", hint="layer or map")
        png, meta = await heavy(work.feature_maps, _text(data, "text"), _spec_name(data),
                                            _text(data, "layer"), image, _text(data, "filename", "upload.png"),
                                            scale)
        return JSONResponse({"png": base64.b64encode(png).decode("ascii"), **meta})

    async def save(request: Request) -> Response:
        if root is None:
            raise CnnDslError("this playground has no folder to save to",
                              hint="start it with a folder: cnndsl serve my-specs/")
        data = await _body(request)
        base = data.get("base")
        if base is not None and not isinstance(base, str):
            raise CnnDslError("'base' must be the sha256 of the text that was opened, or null")
        digest = await run_in_threadpool(work.save, root, _text(data, "name"), _text(data, "text"), base)
        return JSONResponse({"saved": data["name"], "sha256": digest})

    async def lineage(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(work.lineage))

    async def user_error(request: Request, exc: CnnDslError) -> Response:
        return _error(exc)

    async def busy(request: Request, exc: _Busy) -> Response:
        drawing = exc.args[0] == "drawing"
        return _refuse(f"the playground is busy: {MAX_WAITING_DRAWINGS if drawing else MAX_WAITING} requests "
                       f"already wait to {'draw' if drawing else 'compile or run'}", 503, "try again in a moment")

    async def server_error(request: Request, exc: Exception) -> Response:
        LOG.exception("the playground failed on %s", request.url.path)
        return JSONResponse({"error": {"message": f"internal error: {type(exc).__name__}",
                                       "hint": "this is a bug in cnndsl: please report it with the spec"}},
                            status_code=500)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        """404 and 405 as the page's other errors: JSON with a message and a hint."""
        what = {404: f"no such page: {request.url.path}", 405: f"{request.method} is not how {request.url.path} "
                "is asked"}.get(exc.status_code, exc.detail)
        return _refuse(what, exc.status_code, "open the address cnndsl serve printed")

    limiters: dict[str, anyio.CapacityLimiter] = {}
    waiting: dict[str, int] = {}

    async def limited(kind: str, fn, *args):
        """``fn`` in a worker thread, HEAVY (or DRAWING) of a kind at a time: the others wait here, in the event
        loop, so the worker threads stay free for the checks of every keystroke; past MAX_WAITING, 503."""
        capacity = DRAWING if kind == "drawing" else HEAVY
        if kind not in limiters:
            limiters[kind] = anyio.CapacityLimiter(capacity)
        most = MAX_WAITING_DRAWINGS if kind == "drawing" else MAX_WAITING
        if waiting.get(kind, 0) >= capacity + most:  # running and waiting
            raise _Busy(kind)
        waiting[kind] = waiting.get(kind, 0) + 1
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=limiters[kind])
        finally:
            waiting[kind] -= 1

    async def heavy(fn, *args):
        return await limited("heavy", fn, *args)

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/spec/{where}/{name}", spec),
        Route("/api/check", check, methods=["POST"]),
        Route("/api/diagram", diagram, methods=["POST"]),
        Route("/api/compile", compile_, methods=["POST"]),
        Route("/api/maps", maps, methods=["POST"]),
        Route("/api/save", save, methods=["POST"]),
        Route("/api/lineage", lineage),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes,
                    middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
                                Middleware(Token, token=token), Middleware(BodyLimit, limit=MAX_BODY),
                                Middleware(SameOrigin), Middleware(_Headers)],
                    exception_handlers={CnnDslError: user_error, _Busy: busy, Exception: server_error,
                                        HTTPException: http_error})
    return app


class _Busy(Exception):
    """MAX_WAITING requests of a kind already wait."""


class _Headers:
    """Every response: the content security policy, no sniffing, no framing, no referrer."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        async def headed(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
            await send(message)

        return await self.app(scope, receive, headed)
