"""Persistence: PynamoDB models (store.models) and repositories that speak domain terms (store.*_repo)."""
