"""Local, real-protocol stand-ins for the services Scheduler Bridge talks to. Never deployed.

- `scheduler`: the reference Scheduler MCP server (one process per region), with
  auth, protocol eras, counters and fault injection (`scheduler_*` modules).
- `identity`: the App Service managed-identity token endpoint.
- `keyvault`: Azure Key Vault's secrets API over HTTPS (certificates from `tls`), with the
  challenge-based auth the real SDK expects.
- `ingestion`: the Azure Monitor (Application Insights) ingestion endpoint the exporter posts to.
- `host`: a local Azure Functions host for the v2 programming model (`host_*` modules).
- `processes`: start/stop/kill/restart any of them as subprocesses (tests and `make run`).
- `run`: `make run`, the whole stack with ready-to-paste curl commands.

`mcp_bridge` never imports this package.
"""
