"""Fixtures for the local stack's own tests (same helpers as tests/conftest.py, so either place works)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from local import TEMPLATE_PATH
from local.template import Template, load_template
from local.testing import fake_aws_env


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_aws_env(monkeypatch)


@pytest.fixture(scope="session")
def template() -> Template:
    return load_template(TEMPLATE_PATH)


@pytest.fixture
def write_template(tmp_path: Path) -> Callable[..., Template]:
    """``write_template(yaml_text, files={"fn/app.py": "..."})`` → a Template rooted in a temp dir."""

    def write(text: str, files: dict[str, str] | None = None) -> Template:
        for name, content in (files or {}).items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        path = tmp_path / "template.yaml"
        path.write_text(text)
        return load_template(path)

    return write
