"""Models: the abstract base every provider implements, and the registry the daemon serves."""

from ._base import Model, ModelFailure, ModelRequest, NoOptions
from ._registry import ModelRegistry

__all__ = ["Model", "ModelFailure", "ModelRegistry", "ModelRequest", "NoOptions"]
