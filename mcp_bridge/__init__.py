"""The Scheduler bridge: plain HTTP in front of the Scheduler's MCP server, as Azure Functions.

Rooms, each allowed to import only the rooms after it (tests/test_architecture.py enforces it):
functions → operations → idempotency → tool_openapi → runtime (the composition root) → calls →
callers → failover → upstream → azure_services → arguments → cross-cutting (problems, models,
redaction, telemetry, host_logging, process_memory) → config.
"""
