"""Small MCP servers for behaviours the devstack Scheduler has no reason to show."""
