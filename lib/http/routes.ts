import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { isInitializeRequest, type JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { App } from "../app.ts";
import type { ToolRegistry } from "../mcp/registry.ts";
import { VERSION } from "../version.ts";
import { BodyTooLarge, MAX_BODY, readBody } from "./body.ts";
import { checkBearer, checkHostOrigin } from "./guard.ts";
import { LegacySseTransport } from "./sse.ts";
import { statusReport } from "../mcp/meta.ts";
import { handleWeb } from "./web/pages.ts";

/** What the routes need from the daemon. */
export interface RoutesOptions {
  app: App;
  registry: ToolRegistry;
  token: string;
  /** The address the server is bound to (for the Host check). */
  boundHost: string;
  /** Called by `POST /shutdown` (`rsm stop`). */
  onShutdown: () => void;
}

/** The daemon's HTTP surface as one `(Request) => Promise<Response>` handler. */
export interface Routes {
  handle(req: Request): Promise<Response>;
  /** Closes every MCP session (shutdown). */
  close(): Promise<void>;
  /** Number of open MCP sessions (both transports). */
  sessions(): number;
}

/**
 * Builds the routes: `/health`, `/status`, `/shutdown`, MCP Streamable HTTP at `/mcp` (one MCP
 * server object per MCP session, all on the same App), and legacy `GET /sse` + `POST /message`.
 * Every route needs the bearer token and passes the Host/Origin check; bodies are limited.
 */
export function createRoutes(options: RoutesOptions): Routes {
  const { app, registry, token } = options;
  const streamable = new Map<
    string,
    { transport: WebStandardStreamableHTTPServerTransport; server: Server }
  >();
  const legacy = new Map<string, { transport: LegacySseTransport; server: Server }>();
  // The web console loads on first use (xterm.js is half a megabyte of text).
  let webConsole: Promise<import("../console/mod.ts").Console> | undefined;
  const consoleFor = () =>
    webConsole ??= import("../console/mod.ts").then((m) => m.createConsole(app));

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });
  const rpcError = (status: number, code: number, message: string) =>
    json(status, { jsonrpc: "2.0", error: { code, message }, id: null });

  async function parseBody(req: Request): Promise<unknown | Response> {
    try {
      const text = await readBody(req, MAX_BODY);
      const value = JSON.parse(text);
      // The SDK's parsing drops a `"__proto__"` key silently (it would be a prototype, not a
      // field); refuse it like any unknown field rather than run a call without it.
      if (text.includes('"__proto__"') && hasProtoKey(text)) {
        const id = (value as { id?: unknown })?.id ?? null;
        return json(400, {
          jsonrpc: "2.0",
          id,
          error: {
            code: -32602,
            message: 'Invalid params: unknown field "__proto__" (not accepted)',
          },
        });
      }
      return value;
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        return rpcError(413, -32600, `request body larger than ${MAX_BODY} bytes`);
      }
      return rpcError(400, -32700, "Parse error: body is not valid JSON");
    }
  }

  async function mcp(req: Request): Promise<Response> {
    let parsedBody: unknown;
    if (req.method === "POST") {
      const body = await parseBody(req);
      if (body instanceof Response) return body;
      parsedBody = body;
    }
    const sid = req.headers.get("mcp-session-id");
    if (sid) {
      const entry = streamable.get(sid);
      if (!entry) return rpcError(404, -32001, "Session not found: initialize a new session");
      return entry.transport.handleRequest(req, { parsedBody });
    }
    if (req.method === "POST" && isInitializeRequest(parsedBody)) {
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => crypto.randomUUID(),
        onsessioninitialized: (id: string) => {
          streamable.set(id, { transport, server });
        },
        onsessionclosed: (id: string) => {
          streamable.delete(id);
        },
      });
      const server = registry.createServer(app);
      transport.onclose = () => {
        if (transport.sessionId) streamable.delete(transport.sessionId);
      };
      await server.connect(transport);
      return transport.handleRequest(req, { parsedBody });
    }
    return rpcError(400, -32000, "Bad Request: send initialize first, or a valid mcp-session-id");
  }

  async function sse(req: Request, url: URL): Promise<Response> {
    if (req.method === "GET" && url.pathname === "/sse") {
      const transport = new LegacySseTransport();
      const server = registry.createServer(app);
      legacy.set(transport.sessionId, { transport, server });
      transport.onclose = () => legacy.delete(transport.sessionId);
      await server.connect(transport);
      return transport.response("/message");
    }
    if (req.method === "POST" && url.pathname === "/message") {
      const entry = legacy.get(url.searchParams.get("sessionId") ?? "");
      if (!entry) return rpcError(404, -32001, "Session not found: open GET /sse first");
      const body = await parseBody(req);
      if (body instanceof Response) return body;
      for (const msg of Array.isArray(body) ? body : [body]) {
        entry.transport.receive(msg as JSONRPCMessage);
      }
      return new Response("Accepted", { status: 202 });
    }
    return json(405, { error: "method not allowed" });
  }

  return {
    async handle(req: Request): Promise<Response> {
      // the person's pages: same Host/Origin rules; a cookie from a one-time link, not the token
      if (new URL(req.url).pathname.startsWith("/web")) {
        const denied = checkHostOrigin(req, options.boundHost);
        if (denied) {
          await req.body?.cancel().catch(() => {});
          return denied;
        }
        try {
          return await handleWeb(app, req, new URL(req.url));
        } catch (err) {
          app.log.error("page failed", { error: err });
          return new Response("internal error; see daemon.log", { status: 500 });
        }
      }
      const denied = checkHostOrigin(req, options.boundHost) ?? checkBearer(req, token);
      if (denied) {
        await req.body?.cancel().catch(() => {});
        return denied;
      }
      const url = new URL(req.url);
      try {
        if (url.pathname === "/web/console" || url.pathname.startsWith("/web/console/")) {
          return await (await consoleFor()).handle(req, url);
        }
        switch (url.pathname) {
          case "/health":
            return json(200, { ok: true, pid: Deno.pid, version: VERSION });
          case "/status":
            return json(200, statusReport(app));
          case "/shutdown":
            if (req.method !== "POST") return json(405, { error: "use POST" });
            queueMicrotask(options.onShutdown);
            return json(200, { ok: true, stopping: Deno.pid });
          case "/mcp":
            return await mcp(req);
          case "/sse":
          case "/message":
            return await sse(req, url);
          default:
            return json(404, { error: `no route ${url.pathname}` });
        }
      } catch (err) {
        app.log.error("request failed", { path: url.pathname, error: err });
        return rpcError(500, -32603, "Internal error; see daemon.log");
      }
    },
    async close() {
      if (webConsole) (await webConsole).close();
      for (const { transport, server } of [...streamable.values(), ...legacy.values()]) {
        await transport.close().catch(() => {});
        await server.close().catch(() => {});
      }
      streamable.clear();
      legacy.clear();
    },
    sessions: () => streamable.size + legacy.size,
  };
}

/** Whether JSON `text` has an object key `"__proto__"` anywhere (a string value does not count). */
function hasProtoKey(text: string): boolean {
  let found = false;
  JSON.parse(text, function (key, value) {
    if (key === "__proto__") found = true;
    return value;
  });
  return found;
}
