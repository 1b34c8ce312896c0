"""Use cases. Services take plain inputs and ports (repositories, providers, cipher) and never touch HTTP."""
