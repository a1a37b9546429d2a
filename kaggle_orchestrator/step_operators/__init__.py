"""The ``kaggle`` step operator (imported lazily by its flavor when a step runs)."""
