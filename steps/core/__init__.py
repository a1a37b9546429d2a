"""The real work behind the steps, as plain functions (no ZenML, no BentoML), one room per stage.

- :mod:`~steps.core.data`: the example schema and the DVC-tracked dataset (``load_data``);
- :mod:`~steps.core.train`: the LoRA fine-tune, its launcher and checkpoints (``train``);
- :mod:`~steps.core.evaluate`: generation, grading, figures with intervals, the metrics
  document and its report (``evaluate``);
- :mod:`~steps.core.register`: the quality gate and the registration (``register``);
- :mod:`~steps.core.package`: the merged model directory that serving consumes (``package``).

Shared by every room: :mod:`~steps.core.config` (the config schema), :mod:`~steps.core.paths`
(the project's environment variables), :mod:`~steps.core.modeling` (base models as local
directories) and :mod:`~steps.core.tracking` (the stack's experiment tracker). A room imports
only rooms before it (import-linter's layers contract in ``pyproject.toml``).
"""
