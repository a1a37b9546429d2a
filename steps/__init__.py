"""ZenML steps of the nizami pipeline; the logic they wrap lives in ``steps.core``."""
