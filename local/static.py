"""Static files for the local gateway: the built web console (``web/dist``) at ``/``, the way CloudFront serves it
in AWS (docs/console.md): the file if there is one, else ``index.html`` for a client-side route (SPA fallback),
correct content types, hashed ``assets/`` cached for a year, everything else revalidated (ETag), and the security
headers of the template's response-headers policy.

It never answers for the API's own prefixes (``/v1``, ``/webhooks``, ``/_local``): a path there that no route
matches stays API Gateway's 404, never a page.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from local.apigw import HttpRequest, HttpResponse

RESERVED_PREFIXES = ("/v1", "/webhooks", "/_local")
IMMUTABLE = "public, max-age=31536000, immutable"  # Vite's hashed file names change with their content
REVALIDATE = "no-cache"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}

Generated = Callable[[], tuple[bytes, str]]  # → (body, content type), made per request (e.g. config.json)


def is_reserved(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED_PREFIXES)


def content_type(path: PurePosixPath | Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@dataclass
class StaticSite:
    """``handle(request)`` → a response, or None when the request is not for the site (another method, an API
    prefix). ``generated`` maps paths to content made per request; ``headers`` go on every answer."""

    root: Path
    generated: dict[str, Generated] = field(default_factory=dict)
    headers: Sequence[tuple[str, str]] = ()
    missing_hint: str = "the site is not built"

    def handle(self, request: HttpRequest) -> HttpResponse | None:
        if request.method.upper() not in ("GET", "HEAD") or is_reserved(request.path):
            return None
        path = unquote(request.path)
        if path in self.generated:
            body, ctype = self.generated[path]()
            return self._answer(request, body, ctype, REVALIDATE)
        index = self.root / "index.html"
        if not index.is_file():
            text = f"The console is not built: {self.missing_hint}\n".encode()
            return HttpResponse(503, [("content-type", "text/plain; charset=utf-8")], text)
        file = self._file(path)
        if file is not None:
            cache = IMMUTABLE if file.parent.name == "assets" and file.parent.parent == self.root else REVALIDATE
            return self._answer(request, file.read_bytes(), content_type(file), cache)
        if "." in PurePosixPath(path).name:  # a missing file (/logo.png), not a client route (/inbox/abc)
            return HttpResponse(404, [("content-type", "text/plain; charset=utf-8")], b"Not Found\n")
        return self._answer(request, index.read_bytes(), CONTENT_TYPES[".html"], REVALIDATE)

    def _file(self, path: str) -> Path | None:
        relative = PurePosixPath(path.lstrip("/"))
        if not relative.parts or any(part in ("..", "") or part.startswith(".") for part in relative.parts):
            return None
        candidate = (self.root / relative).resolve()
        root = self.root.resolve()
        if candidate != root and root not in candidate.parents:
            return None
        return candidate if candidate.is_file() else None

    def _answer(self, request: HttpRequest, body: bytes, ctype: str, cache: str) -> HttpResponse:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = [("content-type", ctype), ("cache-control", cache), ("etag", etag), *self.headers]
        if _header(request, "if-none-match") == etag:
            return HttpResponse(304, [h for h in headers if h[0] != "content-type"], b"")
        return HttpResponse(200, headers, body)


def _header(request: HttpRequest, name: str) -> str | None:
    return next((v for k, v in request.headers if k.lower() == name), None)
