"""Configuration: app-setting names, parsing and validation, the MCP client configuration file,
Key Vault reference syntax, and the endpoint address policy the settings are checked against.

Imports nothing from the rest of mcp_bridge: every room reads settings, so settings depend on none.
"""
