/**
 * The stream link: MCP as newline-delimited JSON-RPC over the daemon's `mcp.sock`, for `rsm
 * stdio` on this machine (docs/architecture.md "The launcher"). One connection is one MCP
 * session. It carries the same messages as `/mcp` without HTTP requests, SSE framing or a
 * second stream for unprompted messages, so a call costs one write each way.
 *
 * The first line from the launcher is a hello, `{"token", "tools"?, "format"?}`; the daemon
 * answers `{"ok":true,"pid"}` (or `{"ok":false,"error"}` and closes), then both sides speak
 * MCP. The socket's directory is the config dir (mode 0700); the token is checked anyway.
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { LineReader, LineTooLong, LineWriter } from "../lines.ts";
import { MAX_BODY } from "./body.ts";
import { tokenMatches } from "./guard.ts";
import { parseMessage, refuseBadCall } from "./routes.ts";
import { waitAtMost } from "../timeout.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../log.ts";

/** What the stream link needs from the daemon. */
export interface StreamOptions {
  /** The Unix socket to listen on. */
  path: string;
  token: string;
  log: Logger;
  /** A new session's MCP server for this profile and format, or why they are refused. */
  open(tools: string | null, format: string | null): Server | string;
}

/** The listening stream link. */
export interface StreamLink {
  /** Open sessions. */
  sessions(): number;
  /** Stops listening and closes every session. */
  close(): Promise<void>;
}

const HELLO_MAX = 4096;
const HELLO_WAIT_MS = 5000;

/** Listens on `options.path` (removing a stale socket first) and serves sessions. */
export async function serveStream(options: StreamOptions): Promise<StreamLink> {
  await Deno.remove(options.path).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path: options.path });
  const open = new Set<{ transport: LineTransport; server: Server }>();
  (async () => {
    for await (const conn of listener) {
      accept(options, conn, open).catch((err) => {
        options.log.debug("stream link refused", { error: errorMessage(err) });
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {/* listener closed */});
  return {
    sessions: () => open.size,
    async close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const { transport, server } of [...open]) {
        await transport.close();
        await server.close().catch(() => {});
      }
      await Deno.remove(options.path).catch(() => {});
    },
  };
}

/** One connection: the hello, then an MCP session until either side closes. */
async function accept(
  options: StreamOptions,
  conn: Deno.Conn,
  open: Set<{ transport: LineTransport; server: Server }>,
): Promise<void> {
  const lines = new LineReader(conn, MAX_BODY);
  const writer = new LineWriter(conn);
  const next = lines.next();
  next.catch(() => {}); // read on below; this only keeps a late failure handled
  if (!await waitAtMost(next, HELLO_WAIT_MS)) throw new Error("no hello line in time");
  const first = await next;
  if (first === null) throw new Error("closed before the hello");
  let hello: { token?: unknown; tools?: unknown; format?: unknown };
  try {
    hello = JSON.parse(first.length > HELLO_MAX ? "null" : first) ?? {};
  } catch {
    hello = {};
  }
  const refuse = async (error: string) => {
    await writer.write(JSON.stringify({ ok: false, error })).catch(() => {});
    conn.close();
  };
  if (typeof hello.token !== "string" || !tokenMatches(hello.token, options.token)) {
    return await refuse("unauthorized: the hello's token is not this daemon's");
  }
  const str = (v: unknown) => typeof v === "string" ? v : null;
  const server = options.open(str(hello.tools), str(hello.format));
  if (typeof server === "string") return await refuse(server);
  const transport = new LineTransport(conn, lines, writer, options.log);
  const entry = { transport, server };
  open.add(entry);
  transport.onclose = () => {
    open.delete(entry);
    server.close().catch(() => {});
  };
  await writer.write(JSON.stringify({ ok: true, pid: Deno.pid }));
  await server.connect(transport);
}

/** An MCP transport over one connection of newline-delimited JSON-RPC. */
class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  #conn: Deno.Conn;
  #lines: LineReader;
  #writer: LineWriter;
  #log: Logger;
  #closed = false;

  constructor(conn: Deno.Conn, lines: LineReader, writer: LineWriter, log: Logger) {
    this.#conn = conn;
    this.#lines = lines;
    this.#writer = writer;
    this.#log = log;
  }

  start(): Promise<void> {
    this.#read().catch((err) => {
      if (!this.#closed) this.#log.debug("stream link read failed", { error: errorMessage(err) });
    }).finally(() => this.close());
    return Promise.resolve();
  }

  async #read(): Promise<void> {
    while (!this.#closed) {
      let line: string | null;
      try {
        line = await this.#lines.next();
      } catch (err) {
        if (err instanceof LineTooLong) {
          await this.#reply(null, -32600, `message larger than ${MAX_BODY} bytes`);
        }
        throw err;
      }
      if (line === null) return;
      if (!line.trim()) continue;
      const parsed = parseMessage(line);
      if ("error" in parsed) {
        await this.#writer.write(JSON.stringify(parsed.error));
        continue;
      }
      for (const msg of Array.isArray(parsed.value) ? parsed.value : [parsed.value]) {
        const refused = refuseBadCall(msg);
        if (refused) await this.#writer.write(JSON.stringify(refused));
        else this.onmessage?.(msg as JSONRPCMessage);
      }
    }
  }

  #reply(id: unknown, code: number, message: string): Promise<void> {
    return this.#writer.write(JSON.stringify({ jsonrpc: "2.0", id, error: { code, message } }))
      .catch(() => {});
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("stream link closed"));
    return this.#writer.write(JSON.stringify(message));
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* closed */ }
    this.onclose?.();
    return Promise.resolve();
  }
}
