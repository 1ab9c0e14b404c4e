"""The optional ``learn`` extra: numpy, scikit-learn and matplotlib, with one clear line when it is missing."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from leadscore.errors import ConfigurationError

EXTRA_FIX = "install the extra: pip install 'leadscore[learn]' (in this workspace: uv sync)"


def need(module: str) -> ModuleType:
    """Import ``module`` from the learn extra, or raise ConfigurationError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise ConfigurationError("leadscore outcomes", f"{top} is not installed (backtest, calibrate and drift "
                                 f"need the learn extra)", EXTRA_FIX) from None


def require() -> None:
    """Check the whole extra is installed up front (without importing it), so a run does not stop half-way."""
    for module in ("numpy", "sklearn", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            need(module)
