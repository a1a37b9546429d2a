"""The ZenML step-operator flavor ``kaggle``: run a step in a private Kaggle kernel.

Laid out like ZenML's own integrations: ``flavors/`` (settings, config and flavor; zenml and
pydantic only), ``step_operators/`` (ZenML's submit/get_status/wait/cancel; ``standalone.py``
sends the step call to a kernel, ``server_mode.py`` runs ZenML's entrypoint there), plain
client modules with no ZenML (``client.py``, ``credentials.py``, ``retry.py``, ``follow.py``),
what is pushed and runs in the kernel (``kernel.py``, ``kernel_entry.py``, ``kernel_main.py``,
``bundle.py``), ``check.py`` (the pre-flight check) and ``emulator/`` (a local Kaggle that
behaves like Kaggle today).
"""
