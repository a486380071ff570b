"""Models: the abstract base every provider implements, the registry the daemon serves, and the
check of a structured answer."""

from ._base import Model, ModelFailure, ModelRequest, NoOptions
from ._registry import ModelRegistry
from ._structured import SCHEMA_MISMATCH, answer_text, mismatch

__all__ = ["SCHEMA_MISMATCH", "Model", "ModelFailure", "ModelRegistry", "ModelRequest", "NoOptions", "answer_text", "mismatch"]
