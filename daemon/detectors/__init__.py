"""Face detectors as plugins: one module each, found by ``[face] detector``.

Every module in this folder is imported once; each :class:`~.base.FaceDetector`
subclass with a ``type_key`` becomes a detector (the way Frigate builds its
detector table), and the ``[face]`` keys they declare join the config table.
Adding a detector means adding one file here.

* ``blazeface`` (default): MediaPipe's short-range BlazeFace network;
* ``haar`` (fallback): OpenCV's tuned Haar cascade passes;
* ``yunet``: OpenCV's YuNet CNN (needs ``face.yunet_model``).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import MappingProxyType
from typing import Dict, Mapping, Tuple, Type

from ..errors import ConfigError
from ..keys import Key
from .base import FaceDetector

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def _table() -> Dict[str, Type[FaceDetector]]:
    found: Dict[str, Type[FaceDetector]] = {}
    for cls in FaceDetector.__subclasses__():
        if cls.type_key:
            if cls.type_key in found:
                raise ImportError(f"two face detectors are named {cls.type_key!r}: "
                                  f"{found[cls.type_key].__module__} and {cls.__module__}")
            found[cls.type_key] = cls
    return dict(sorted(found.items()))


#: ``[face] detector`` name -> detector class, in name order
DETECTORS: Mapping[str, Type[FaceDetector]] = MappingProxyType(_table())
#: every key the detectors declare, each once, in detector order
KEYS: Tuple[Key, ...] = tuple({k.dotted: k for cls in DETECTORS.values() for k in cls.keys}.values())


def detector_class(name: str) -> Type[FaceDetector]:
    try:
        return DETECTORS[name]
    except KeyError:
        raise ConfigError(f"unknown face detector {name!r}; "
                          f"known: {', '.join(DETECTORS)}") from None


def build(cfg) -> FaceDetector:
    """The configured detector, loaded (FaceGateError when its model cannot be)."""
    return detector_class(cfg.face_detector).from_config(cfg)
