"""Build and release tools (`make package`). Never deployed, never imported by `mcp_bridge`."""
