"""Cold-start wiring shared by every function: settings read once, PynamoDB models bound to their tables."""

from __future__ import annotations

from gateway.config import Settings, get_settings
from gateway.store.models import bind_tables

_bound_to: Settings | None = None


def ready() -> Settings:
    """Idempotent; re-binds only when settings changed (tests clear ``get_settings``)."""
    global _bound_to
    settings = get_settings()
    if settings is not _bound_to:
        bind_tables(settings)
        _bound_to = settings
    return settings
