"""Who is calling, what they may call, and the record of what they did.

`principal` reads the caller from App Service Authentication's headers (trusted only while
`WEBSITE_AUTH_ENABLED` says the platform put them there), `access` is what the HTTP functions ask
(against the tool → role policy parsed in `config.tool_roles`), and `audit` writes one record per
tool call. May import the cross-cutting modules and `config`; never the call path or the functions
above it, which import it.
"""
