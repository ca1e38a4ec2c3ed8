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
import { type Format, type Group, parseGroups } from "../config.ts";
import { errorMessage } from "../errors.ts";

/** What the routes need from the daemon. */
export interface RoutesOptions {
  app: App;
  registry: ToolRegistry;
  token: string;
  /** The address the server is bound to (for the Host check). */
  boundHost: string;
  /** Called by `POST /shutdown` (`rsm stop`). */
  onShutdown: () => void;
  /** The registry for another tool profile (a launcher's own REMOTE_SHELL_MCP_TOOLS). */
  registryFor?: (groups: ReadonlySet<Group>) => ToolRegistry;
}

/** The daemon's HTTP surface as one `(Request) => Promise<Response>` handler. */
export interface Routes {
  handle(req: Request): Promise<Response>;
  /** Closes every MCP session (shutdown). */
  close(): Promise<void>;
  /** Number of open MCP sessions (both transports). */
  sessions(): number;
}

/** The open MCP sessions of both transports. */
interface Sessions {
  streamable: Map<string, { transport: WebStandardStreamableHTTPServerTransport; server: Server }>;
  legacy: Map<string, { transport: LegacySseTransport; server: Server }>;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function rpcError(status: number, code: number, message: string): Response {
  return json(status, { jsonrpc: "2.0", error: { code, message }, id: null });
}

/**
 * Builds the routes: `/health`, `/status`, `/shutdown`, MCP Streamable HTTP at `/mcp` (one MCP
 * server object per MCP session, all on the same App), and legacy `GET /sse` + `POST /message`.
 * Every route needs the bearer token and passes the Host/Origin check; bodies are limited.
 */
export function createRoutes(options: RoutesOptions): Routes {
  const sessions: Sessions = { streamable: new Map(), legacy: new Map() };
  return {
    async handle(req: Request): Promise<Response> {
      const url = new URL(req.url);
      // the person's pages: same Host/Origin rules; a cookie from a one-time link, not the token
      if (url.pathname.startsWith("/web")) return await web(options, req, url);
      const denied = checkHostOrigin(req, options.boundHost) ?? checkBearer(req, options.token);
      if (denied) {
        await req.body?.cancel().catch(() => {});
        return denied;
      }
      try {
        return await route(options, sessions, req, url);
      } catch (err) {
        options.app.log.error("request failed", { path: url.pathname, error: err });
        return rpcError(500, -32603, "Internal error; see daemon.log");
      }
    },
    async close() {
      const all = [...sessions.streamable.values(), ...sessions.legacy.values()];
      for (const { transport, server } of all) {
        await transport.close().catch(() => {});
        await server.close().catch(() => {});
      }
      sessions.streamable.clear();
      sessions.legacy.clear();
    },
    sessions: () => sessions.streamable.size + sessions.legacy.size,
  };
}

/** The person's pages under `/web`. */
async function web(options: RoutesOptions, req: Request, url: URL): Promise<Response> {
  const denied = checkHostOrigin(req, options.boundHost);
  if (denied) {
    await req.body?.cancel().catch(() => {});
    return denied;
  }
  try {
    return await handleWeb(options.app, req, url);
  } catch (err) {
    options.app.log.error("page failed", { error: err });
    return new Response("internal error; see daemon.log", { status: 500 });
  }
}

/** A request that passed the token and Host/Origin checks, by path. */
async function route(
  options: RoutesOptions,
  sessions: Sessions,
  req: Request,
  url: URL,
): Promise<Response> {
  const { app } = options;
  switch (url.pathname) {
    case "/health":
      return json(200, { ok: true, pid: Deno.pid, version: VERSION });
    case "/status":
      return json(200, statusReport(app));
    case "/shutdown":
      if (req.method !== "POST") return json(405, { error: "use POST" });
      queueMicrotask(options.onShutdown);
      return json(200, { ok: true, stopping: Deno.pid });
    case "/console-link":
      // `rsm console`: a one-time login link to the web console (10 minutes)
      if (req.method !== "POST") return json(405, { error: "use POST" });
      return json(200, { url: app.web.link("/web/console", 10 * 60_000) });
    case "/mcp":
      return await mcp(options, sessions, req);
    case "/sse":
    case "/message":
      return await sse(options, sessions, req, url);
    default:
      return json(404, { error: `no route ${url.pathname}` });
  }
}

/** A JSON-RPC body (limited in size), or the error response to send instead. */
async function parseBody(req: Request): Promise<unknown | Response> {
  let text: string;
  try {
    text = await readBody(req, MAX_BODY);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      return rpcError(413, -32600, `request body larger than ${MAX_BODY} bytes`);
    }
    return rpcError(400, -32700, "Parse error: body is not valid JSON");
  }
  const parsed = parseMessage(text);
  if ("value" in parsed) return parsed.value;
  return json(400, parsed.error);
}

/**
 * One JSON-RPC message (or batch) as text → its value, or the error to answer instead: not
 * JSON (-32700), or an object key `"__proto__"`, which the SDK's parsing would drop silently
 * (it would be a prototype, not a field), so it is refused like any unknown field rather than
 * run a call without it. Shared by `/mcp` and the launcher's stream link.
 */
export function parseMessage(
  text: string,
): { value: unknown } | {
  error: { jsonrpc: "2.0"; id: unknown; error: { code: number; message: string } };
} {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {
      error: {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32700, message: "Parse error: body is not valid JSON" },
      },
    };
  }
  if (text.includes('"__proto__"') && hasProtoKey(text)) {
    return {
      error: {
        jsonrpc: "2.0",
        id: (value as { id?: unknown })?.id ?? null,
        error: {
          code: -32602,
          message: 'Invalid params: unknown field "__proto__" (not accepted)',
        },
      },
    };
  }
  return { value };
}

/** MCP Streamable HTTP at `/mcp`: a new session on initialize, else the session's transport. */
async function mcp(options: RoutesOptions, sessions: Sessions, req: Request): Promise<Response> {
  let parsedBody: unknown;
  if (req.method === "POST") {
    const body = await parseBody(req);
    if (body instanceof Response) return body;
    parsedBody = body;
  }
  const sid = req.headers.get("mcp-session-id");
  if (sid) {
    const entry = sessions.streamable.get(sid);
    if (!entry) return rpcError(404, -32001, "Session not found: initialize a new session");
    const refused = refuseBadCall(parsedBody);
    if (refused) return json(200, refused);
    return entry.transport.handleRequest(req, { parsedBody });
  }
  if (req.method === "POST" && isInitializeRequest(parsedBody)) {
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id: string) => {
        sessions.streamable.set(id, { transport, server });
      },
      onsessionclosed: (id: string) => {
        sessions.streamable.delete(id);
      },
    });
    const server = sessionServer(options, req);
    if (server instanceof Response) return server;
    transport.onclose = () => {
      if (transport.sessionId) sessions.streamable.delete(transport.sessionId);
    };
    await server.connect(transport);
    return transport.handleRequest(req, { parsedBody });
  }
  return rpcError(400, -32000, "Bad Request: send initialize first, or a valid mcp-session-id");
}

/**
 * The MCP server of a new session. A launcher sends its client's tool profile and format
 * (`x-rsm-tools`, `x-rsm-format`, from its REMOTE_SHELL_MCP_TOOLS / _FORMAT), so clients with
 * different profiles each get theirs from one daemon; without them, the daemon's own apply.
 */
function sessionServer(options: RoutesOptions, req: Request): Server | Response {
  const server = sessionServerFor(
    options,
    req.headers.get("x-rsm-tools"),
    req.headers.get("x-rsm-format"),
  );
  return typeof server === "string" ? rpcError(400, -32602, server) : server;
}

/**
 * The MCP server of a new session with this tool profile and format (null: the daemon's
 * own), or why they are refused.
 */
export function sessionServerFor(
  options: Pick<RoutesOptions, "app" | "registry" | "registryFor">,
  tools: string | null,
  format: string | null,
): Server | string {
  const { app, registry } = options;
  if (tools === null && format === null) return registry.createServer(app);
  let groups = app.groups;
  try {
    if (tools !== null) groups = parseGroups(tools);
  } catch (err) {
    return `Invalid params: ${errorMessage(err)}`;
  }
  if (format !== null && format !== "toon" && format !== "json") {
    return `Invalid params: REMOTE_SHELL_MCP_FORMAT must be toon or json, not "${
      format.slice(0, 40)
    }"`;
  }
  // The session's view of the one App: same managers and state, its own profile and format.
  const view = Object.create(app, {
    groups: { value: groups },
    format: { value: (format ?? app.format) as Format },
  }) as App;
  const reg = tools === null ? registry : (options.registryFor?.(groups) ?? registry);
  return reg.createServer(view);
}

/** The legacy HTTP+SSE transport: `GET /sse` opens a session, `POST /message` feeds it. */
async function sse(
  options: RoutesOptions,
  sessions: Sessions,
  req: Request,
  url: URL,
): Promise<Response> {
  if (req.method === "GET" && url.pathname === "/sse") {
    const transport = new LegacySseTransport();
    const server = options.registry.createServer(options.app);
    sessions.legacy.set(transport.sessionId, { transport, server });
    transport.onclose = () => sessions.legacy.delete(transport.sessionId);
    await server.connect(transport);
    return transport.response("/message");
  }
  if (req.method === "POST" && url.pathname === "/message") {
    const entry = sessions.legacy.get(url.searchParams.get("sessionId") ?? "");
    if (!entry) return rpcError(404, -32001, "Session not found: open GET /sse first");
    const body = await parseBody(req);
    if (body instanceof Response) return body;
    for (const msg of Array.isArray(body) ? body : [body]) {
      const refused = refuseBadCall(msg);
      if (refused) await entry.transport.send(refused);
      else entry.transport.receive(msg as JSONRPCMessage);
    }
    return new Response("Accepted", { status: 202 });
  }
  return json(405, { error: "method not allowed" });
}

/**
 * A `tools/call` whose `params` or `arguments` is not a JSON object gets -32602 with a plain
 * message here; the SDK would answer -32603 with its raw validation dump. Null otherwise.
 */
export function refuseBadCall(msg: unknown): JSONRPCMessage | null {
  if (!msg || typeof msg !== "object" || Array.isArray(msg)) return null;
  const m = msg as { method?: unknown; id?: unknown; params?: unknown };
  if (m.method !== "tools/call" || (typeof m.id !== "string" && typeof m.id !== "number")) {
    return null;
  }
  const kind = (v: unknown) => v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
  const isObject = (v: unknown) => !!v && typeof v === "object" && !Array.isArray(v);
  let problem = "";
  if (!isObject(m.params)) {
    problem = `params must be an object {name, arguments}, not ${kind(m.params)}`;
  } else {
    const p = m.params as { name?: unknown; arguments?: unknown };
    if (typeof p.name !== "string") problem = `params.name must be the tool's name (a string)`;
    else if (p.arguments !== undefined && !isObject(p.arguments)) {
      problem = `arguments of ${p.name.slice(0, 100)} must be a JSON object of named fields ` +
        `(e.g. {"session_id": "web1"}), not ${kind(p.arguments)}; see the tool's inputSchema`;
    }
  }
  if (!problem) return null;
  return {
    jsonrpc: "2.0",
    id: m.id,
    error: { code: -32602, message: `Invalid params: ${problem}` },
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
