"""`make bench`: the bridge side by side with a raw, persistent `mcp.Client` on the same servers.

Every figure is a ratio measured in one run, with the compared variants interleaved, so noise from
other work on the machine falls on both sides alike. Sections (one module each):

- `latency`: one caller, bridge vs raw vs naive (a new client per call), both eras;
- `concurrency`: 1, 10 and 100 callers, throughput, errors, identity requests, MCP connections;
- `http_load`: the devstack Functions host under a bounded load generator vs the Scheduler itself;
- `cold_start`: import time of `function_app` vs what indexing needs, first request after import;
- `failover`: the primary killed under load.

The last line printed is `RESULT key=value ...`.
"""
