"""The console's static files as the local gateway serves them (local/static.py): files, SPA fallback, content
types, cache headers, revalidation, and the paths it must never answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.apigw import HttpRequest
from local.static import StaticSite, is_reserved


@pytest.fixture
def site(tmp_path: Path) -> StaticSite:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "assets" / "index-abc123.css").write_text("body{}")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    (tmp_path.parent / "secret.txt").write_text("outside the site")
    return StaticSite(tmp_path, generated={"/config.json": lambda: (b'{"a":1}', "application/json")},
                      headers=[("x-frame-options", "DENY")])


def get(site: StaticSite, path: str, method: str = "GET", headers: list[tuple[str, str]] | None = None):  # type: ignore[no-untyped-def]
    return site.handle(HttpRequest(method=method, path=path, headers=headers or []))


@pytest.mark.parametrize(
    ("path", "content_type", "cache"),
    [
        ("/", "text/html; charset=utf-8", "no-cache"),
        ("/index.html", "text/html; charset=utf-8", "no-cache"),
        ("/assets/index-abc123.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"),
        ("/assets/index-abc123.css", "text/css; charset=utf-8", "public, max-age=31536000, immutable"),
        ("/favicon.svg", "image/svg+xml", "no-cache"),
        ("/config.json", "application/json", "no-cache"),
    ],
)
def test_files_have_their_type_and_cache_policy(site: StaticSite, path: str, content_type: str, cache: str) -> None:
    response = get(site, path)

    assert response is not None and response.status == 200
    assert response.header("content-type") == content_type
    assert response.header("cache-control") == cache
    assert response.header("x-frame-options") == "DENY"


@pytest.mark.parametrize("path", ["/inbox", "/inbox/cnv_123", "/channels/ch_1", "/a/b/c"])
def test_client_routes_get_index_html(site: StaticSite, path: str) -> None:
    response = get(site, path)

    assert response is not None and response.status == 200
    assert response.body.startswith(b"<!doctype html>")
    assert response.header("cache-control") == "no-cache"


@pytest.mark.parametrize("path", ["/logo.png", "/assets/gone-123.js", "/../secret.txt", "/%2e%2e/secret.txt",
                                  "/assets/../../secret.txt", "/.env"])
def test_missing_files_and_escapes_are_404(site: StaticSite, path: str) -> None:
    response = get(site, path)

    assert response is not None and response.status == 404
    assert b"outside" not in response.body


@pytest.mark.parametrize("path", ["/v1", "/v1/conversations", "/v1/nope", "/webhooks/twilio", "/_local/users",
                                  "/_local"])
def test_api_prefixes_are_never_answered(site: StaticSite, path: str) -> None:
    assert is_reserved(path)
    assert get(site, path) is None


def test_only_get_and_head(site: StaticSite) -> None:
    assert get(site, "/", method="POST") is None
    head = get(site, "/", method="HEAD")
    assert head is not None and head.status == 200


def test_unchanged_file_revalidates_to_304(site: StaticSite) -> None:
    first = get(site, "/")
    assert first is not None
    etag = first.header("etag")
    assert etag

    again = get(site, "/", headers=[("If-None-Match", etag)])

    assert again is not None and again.status == 304 and again.body == b""
    changed = get(site, "/", headers=[("If-None-Match", '"other"')])
    assert changed is not None and changed.status == 200


def test_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    response = StaticSite(tmp_path / "dist", missing_hint="run make deps").handle(HttpRequest(method="GET", path="/"))

    assert response is not None and response.status == 503
    assert b"run make deps" in response.body
