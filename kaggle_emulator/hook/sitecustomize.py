"""Point kagglesdk's LOCAL endpoint at ``$KAGGLE_EMULATOR_URL`` when the interpreter starts.

Python imports ``sitecustomize`` from ``sys.path`` at startup; this one is found when its folder
is on ``PYTHONPATH``. With ``KAGGLE_API_ENVIRONMENT=LOCALHOST`` the ``kaggle`` CLI and
``KaggleApi`` use the LOCAL endpoint (``http://localhost`` by default), which this replaces. It
does nothing when ``KAGGLE_EMULATOR_URL`` is unset. (It shadows any other ``sitecustomize``.)
"""

import os

_url = os.environ.get("KAGGLE_EMULATOR_URL")
if _url:
    try:
        from kagglesdk import kaggle_env as _kaggle_env
    except ImportError:  # an interpreter without the kaggle client: nothing to point
        pass
    else:
        _kaggle_env._env_to_endpoint[_kaggle_env.KaggleEnv.LOCAL] = _url.rstrip("/")
