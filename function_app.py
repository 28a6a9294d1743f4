"""Entry point for the Azure Functions host: create the app and register the blueprints.

Nothing else happens here. Settings, clients and credentials are created on first use, so the host
can always index the functions, even when a setting is wrong. The one setting read at indexing is
`HTTP_STREAMS`: HTTP streams (Server-Sent Events) are the whole app's choice, made before the worker
indexes it (mcp_bridge.functions.http_streams).
"""

import azure.functions as func

from mcp_bridge.functions import http_streams
from mcp_bridge.functions.health_api import bp as health_api
from mcp_bridge.functions.openapi_api import bp as openapi_api
from mcp_bridge.functions.operations_api import bp as operations_api
from mcp_bridge.functions.servers_api import bp as servers_api
from mcp_bridge.functions.tools_api import bp as tools_api
from mcp_bridge.functions.warmup_api import bp as warmup_api

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(tools_api)
app.register_functions(servers_api)
app.register_functions(health_api)
app.register_functions(openapi_api)
app.register_functions(operations_api)
app.register_functions(warmup_api)
if http_streams.configured():
    http_streams.enable(app)
