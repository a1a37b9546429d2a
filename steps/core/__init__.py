"""Plain-Python logic behind the steps, testable without ZenML."""
