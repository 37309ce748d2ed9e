"""Documents people upload: checks by content and an object store (docs/architecture.md)."""
