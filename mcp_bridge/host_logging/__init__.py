"""host.json's log levels for Python loggers, which the Functions host itself never applies.

`apply_host_json_levels()` runs once, on first use (from `redaction.install`). This room imports only
the standard library, and nothing in `mcp_bridge` but its own modules.
"""

from .levels import apply_host_json_levels, python_logger_levels, reset_for_tests

__all__ = ["apply_host_json_levels", "python_logger_levels", "reset_for_tests"]
