"""parley: the wire contract of the parley daemon, and the Python client scripts use."""

from ._builders import assistant, attachment, system, text_of, tool_message, tool_result, user
from ._errors import *  # noqa: F403
from ._errors import __doc__ as _errors_doc  # noqa: F401
from ._types import *  # noqa: F403

__version__ = "0.1.0"
