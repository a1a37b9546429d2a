"""A ``sitecustomize`` that points the kaggle client of a Python process at the emulator.

Put this folder first on ``PYTHONPATH`` and set ``KAGGLE_EMULATOR_URL`` (plus
``KAGGLE_API_ENVIRONMENT=LOCALHOST``); ``kaggle_emulator.redirect.client_env``
builds that environment.
"""
