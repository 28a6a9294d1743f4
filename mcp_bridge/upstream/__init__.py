"""The upstream: the MCP session and its owner task, the wire, auth and tokens, the tool catalog, and
the guard that checks every address a connection is made to.

May import azure_services, the cross-cutting modules and config; nothing above it.
"""
