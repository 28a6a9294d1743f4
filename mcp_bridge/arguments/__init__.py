"""Tool arguments beyond what JSON Schema validation says: names a tool's schema does not declare.

Used by the call path (`bridge.py`) next to the catalog's schema check; imports only `problems`.
"""

from .strict import UnknownArgument, invalid_arguments, unknown_arguments

__all__ = ["UnknownArgument", "invalid_arguments", "unknown_arguments"]
