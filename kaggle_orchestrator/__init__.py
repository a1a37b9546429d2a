"""The ZenML step-operator flavor ``kaggle``: run a step in a private Kaggle kernel.

Laid out like ZenML's own integrations: ``flavors/`` (settings, config and flavor; zenml and
pydantic only), ``step_operators/`` (ZenML's submit/get_status/wait/cancel, handed to the one
submission strategy of the operator's mode, ``submission.py``: ``standalone.py`` runs ZenML's
entrypoint here and ``kernel_call.py`` sends the step call to a kernel; ``server_mode.py`` runs
ZenML's entrypoint there), plain client modules with no ZenML (``client.py``: the client, its
factory and the capacity check; ``credentials.py``, ``retry.py``, ``follow.py``), what is
pushed and runs in the kernel (``kernel.py``, ``kernel_entry.py``, ``kernel_main.py``,
``bundle.py``; ``checkpoint_contract.py``: what the kernel, the operator and the training code
agree on) and ``check.py`` (the pre-flight check). The local Kaggle for dry runs and tests is a
package of its own, ``kaggle_emulator``, which nothing here imports.
"""
