// A stateless Streamable HTTP server built with one peer's own TypeScript SDK, for the conformance
// matrix (tests/conformance). The SDK's example server has no tool that reports progress; this one
// serves the `count` tool of the SDK's own progressExample (stdio there) over Streamable HTTP, the
// way its simpleStatelessStreamableHttp example serves tools: a fresh server per request, no
// session id, GET and DELETE answered 405. The test copies this file into the peer's npm folder so
// the imports resolve to that peer's pinned SDK. Every tool run prints `TOOL <name>`.
import http from 'node:http';
import * as z from 'zod/v4';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const port = Number.parseInt(process.env.MCP_PORT ?? '', 10);

function build() {
    const server = new McpServer({ name: 'conformance-progress', version: '1.0.0' }, { capabilities: { logging: {} } });
    server.registerTool(
        'count',
        {
            description: 'Count to N with progress updates',
            inputSchema: { n: z.number().int().min(1).max(100) },
            annotations: { readOnlyHint: true }
        },
        async ({ n }, extra) => {
            console.log('TOOL count');
            const token = extra._meta?.progressToken;
            console.log(`PROGRESS_TOKEN ${token === undefined ? 'no' : 'yes'}`);
            for (let i = 1; i <= n; i++) {
                if (token !== undefined) {
                    await extra.sendNotification({
                        method: 'notifications/progress',
                        params: { progressToken: token, progress: i, total: n, message: `Counting: ${i}/${n}` }
                    });
                }
                await server.sendLoggingMessage({ level: 'info', data: `Counting: ${i}/${n}` });
                await new Promise(resolve => setTimeout(resolve, 20));
            }
            return { content: [{ type: 'text', text: `Counted to ${n}` }] };
        }
    );
    return server;
}

const httpServer = http.createServer(async (req, res) => {
    if (req.url !== '/mcp') {
        res.writeHead(404).end();
        return;
    }
    if (req.method !== 'POST') {
        res.writeHead(405, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }));
        return;
    }
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const server = build();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
        transport.close();
        server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
});

httpServer.listen(port, '127.0.0.1', () => console.log(`conformance progress peer on 127.0.0.1:${port}`));
