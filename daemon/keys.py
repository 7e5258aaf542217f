"""One config key: section, name, type, default, allowed range and help.

Declared where the setting is used (``config.KEYS`` for the daemon, each face
detector's own ``keys``), collected into the one table that validation,
``--print-config`` and the example config are built from (:mod:`.config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    kind: str  # str | int | float | bool | choice | pin | optpin | optfloat | path
    default: Any
    help: str
    low: Optional[float] = None
    high: Optional[float] = None
    choices: Tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"
