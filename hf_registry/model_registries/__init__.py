"""The ``huggingface`` model registry (imported lazily by its flavor when a stack uses it)."""
