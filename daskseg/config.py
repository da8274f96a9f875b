"""daskseg's settings in Dask's configuration system (``daskseg.*``), with defaults from daskseg.yaml.

Users override them in ``~/.config/dask/*.yaml`` or with environment variables such as
``DASK_DASKSEG__PREDICT__RETRIES=5``, as for any Dask setting.
"""

from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml

_DEFAULTS_FILE = os.path.join(os.path.dirname(__file__), "daskseg.yaml")

with open(_DEFAULTS_FILE) as _f:
    dask.config.update_defaults(yaml.safe_load(_f))


def get(key: str, default: Any = None) -> Any:
    """The value of ``daskseg.<key>`` (e.g. ``get('predict.retries')``)."""
    return dask.config.get(f"daskseg.{key}", default=default)
