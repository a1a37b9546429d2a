"""The ZenML step-operator flavor ``kaggle``: run a step's function in a private Kaggle kernel.

``flavor.py`` (settings, config, flavor; zenml + pydantic only), ``step_operator.py`` (ZenML's
submit/get_status/wait/cancel), ``standalone.py`` (the step call sent to a kernel),
``kernel.py`` and ``kernel_entry.py`` (what is pushed), ``kernel_main.py`` (what runs there),
``client.py`` / ``credentials.py`` / ``follow.py`` (the Kaggle API), ``check.py`` (the
pre-flight check) and ``emulator/`` (a local Kaggle that behaves like Kaggle today).
"""
