"""Reliability runs that produce figures a user can quote (docs/reliability.md).

- `python -m reliability.soak`: one bridge process under a steady mix for 15 minutes, with region
  restarts and short-lived tokens; prints one `SOAK ...` line.
- `python -m reliability.chaos`: 50 concurrent callers against two regions of a third-party MCP
  server while a seeded driver kills, restarts, hangs and fronts them; prints one `CHAOS ...` line.
- `python -m reliability.fuzz`: 10,000 distinct bad requests across every route of the real HTTP
  surface; prints one `FUZZ ...` line.

`make soak` runs all three at full length; `make test` runs a short form of each. Like `bench/`,
this is a development tool: `mcp_bridge` never imports it and it is not deployed.
"""
