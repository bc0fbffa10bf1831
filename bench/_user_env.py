"""The environment a benchmark's child processes run in: the user's, as a shell gives it.

Python writes each module's bytecode (``__pycache__``) the first time it imports it and
reads it from then on; a package installed by pip comes with it written. A sandbox or
CI image may set ``PYTHONDONTWRITEBYTECODE=1``, and then an editable install compiles
every module of the project from source in every process (about 0.1 s of a command's
start here), which no user's command pays. The benchmarks that time whole processes run
them without that setting, after one unmeasured warm-up run that writes the bytecode.
"""

from __future__ import annotations

import os

__all__ = ["user_env"]


def user_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``PYTHONDONTWRITEBYTECODE``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | extra
