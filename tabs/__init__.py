"""One module per tab. A tab module defines `TITLE`, `ORDER` and `build(service)`; the app finds it here,
so adding a tab is adding one module."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

_NOT_TABS = {"common", "lessons", "status"}


def tab_modules() -> list[ModuleType]:
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if info.name not in _NOT_TABS
    ]
    return sorted((m for m in modules if hasattr(m, "build")), key=lambda m: m.ORDER)
