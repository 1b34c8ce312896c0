"""Pure rules and types: no I/O, no AWS, no HTTP."""
