"""The ZenML step-operator flavor ``kaggle`` (train inside a Kaggle GPU kernel).

Not built yet: it is the subject of its own issue ("Train inside a Kaggle GPU kernel"). The
folder exists because the design card fixes the top-level layout; until the flavor lands, the
``local`` stack trains in-process.
"""
