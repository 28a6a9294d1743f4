"""Who is calling, what they may call, and the record of what they did.

`principal` reads the caller from App Service Authentication's headers (trusted only while
`WEBSITE_AUTH_ENABLED` says the platform put them there), `roles` is the tool → role policy parsed
from the settings, `access` is what the HTTP functions ask, and `audit` writes one record per tool
call. The room may import `problems`, `redaction` and `telemetry._names`; never the settings, the
call path or the functions above it, which import it. Nothing is imported here: `settings`
imports `roles` while it is parsed.
"""
