/**
 * `rsm stdio`: the MCP server an MCP client starts. It bridges newline-delimited JSON-RPC on
 * stdin/stdout to the daemon, starting the daemon when none runs and re-initialising
 * transparently after the daemon restarts (docs/architecture.md "The launcher"). On the
 * daemon's machine it uses the stream link (lib/http/stream.ts: the same JSON lines over the
 * daemon's `mcp.sock`); otherwise, or with `REMOTE_SHELL_MCP_LINK=http`, Streamable HTTP at
 * `/mcp` (over the daemon's `daemon.sock`, else its TCP address).
 *
 * Delivery rules after a daemon death: a message that never reached the daemon is sent again
 * (after the client's `initialize` and `notifications/initialized` are replayed to the new
 * daemon); a request that was in flight is answered with -32001, because it may or may not
 * have run. stdout carries MCP messages only.
 */
import { findOrSpawnDaemon } from "./lib/http/client/spawn.ts";
import type { Handle } from "./lib/http/handle.ts";
import { sseData } from "./lib/http/client/sse_parse.ts";
import { resolvePaths } from "./lib/paths.ts";
import { errorMessage } from "./lib/errors.ts";
import { waitAtMost } from "./lib/timeout.ts";
import { LineReader, LineWriter } from "./lib/lines.ts";

type Id = string | number;
interface Message {
  jsonrpc?: string;
  id?: Id | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: unknown;
}

/** Flags of `rsm stdio`. */
export interface LauncherFlags {
  handle?: string | undefined;
  noSpawn?: boolean | undefined;
}

interface Link {
  handle: Handle;
  /** Where requests go: the daemon's Unix socket when it has one, else its TCP URL. */
  base: string;
  /** The HTTP client bound to the daemon's Unix socket (undefined: plain TCP). */
  client?: Deno.HttpClient | undefined;
  sessionId?: string | undefined;
  protocolVersion?: string | undefined;
  dead: boolean;
  getStream?: AbortController | undefined;
  /** The stream link (JSON lines over `mcp.sock`), when the daemon has one. */
  stream?: StreamConn | undefined;
}

/** A stream link connection and the requests on it that await their answers. */
interface StreamConn {
  conn: Deno.Conn;
  lines: LineReader;
  writer: LineWriter;
  /** By request id (JSON): settles "ok" when answered, "lost" when the link dies first. */
  waiting: Map<string, { settle: (o: PostOutcome) => void; swallow: boolean }>;
}

type PostOutcome = "ok" | "unreached" | "lost" | "session-gone" | "refused";

const MAX_IN_FLIGHT = 128;
const LINK_GIVE_UP_MS = 30_000;
/** Lines longer than this from the client or the daemon end the link (the daemon takes 16 MiB). */
const MAX_LINE = 256 * 1024 * 1024;

/** Runs the bridge until stdin closes or a signal arrives; returns the exit code. */
export async function runLauncher(flags: LauncherFlags): Promise<number> {
  const bridge = new Bridge(flags);
  return await bridge.run();
}

class Bridge {
  #paths;
  #noSpawn: boolean;
  #link: Link | null = null;
  #linking: Promise<Link> | null = null;
  #init: Message | undefined;
  #initialized: Message | undefined;
  #out = new LineWriter(Deno.stdout);
  #enc = new TextEncoder();
  #inFlight = new Set<Promise<void>>();
  #slots = MAX_IN_FLIGHT;
  #waiters: (() => void)[] = [];
  #closing = false;
  #tools = Deno.env.get("REMOTE_SHELL_MCP_TOOLS");
  #format = Deno.env.get("REMOTE_SHELL_MCP_FORMAT");
  #httpOnly = Deno.env.get("REMOTE_SHELL_MCP_LINK") === "http";

  constructor(flags: LauncherFlags) {
    this.#paths = resolvePaths({ handle: flags.handle });
    this.#noSpawn = flags.noSpawn ?? false;
  }

  async run(): Promise<number> {
    const stop = () => this.#shutdown();
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      try {
        Deno.addSignalListener(sig, stop);
      } catch { /* unsupported */ }
    }
    const lines = new LineReader(Deno.stdin, MAX_LINE);
    try {
      while (!this.#closing) {
        const line = await lines.next();
        if (line === null) break;
        await this.#line(line);
      }
    } catch (err) {
      this.#diag(`stdin: ${errorMessage(err)}`);
    }
    await this.#shutdown();
    return 0;
  }

  async #shutdown(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // Give in-flight calls a moment to answer, then leave; the daemon stays up.
    const pending = Promise.allSettled([...this.#inFlight]);
    await waitAtMost(pending, 1500);
    const link = this.#link;
    link?.getStream?.abort();
    if (link?.stream) this.#kill(link); // closing the connection ends the session
    if (link?.sessionId && !link.dead) {
      await mcpFetch(link, {
        method: "DELETE",
        headers: this.#headers(link),
        signal: AbortSignal.timeout(500),
      }).then((r) => r.body?.cancel()).catch(() => {});
    }
    await this.#out.flushed();
    Deno.exit(0);
  }

  /** One stdin line: blank → ignored; bad JSON → -32700; else forwarded. */
  async #line(raw: string): Promise<void> {
    const line = raw.trim();
    if (!line) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      this.#write({
        jsonrpc: "2.0",
        id: null,
        error: { code: -32700, message: `Parse error: ${errorMessage(err)}` },
      });
      return;
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    for (const msg of messages) {
      if (!msg || typeof msg !== "object") {
        this.#write({
          jsonrpc: "2.0",
          id: null,
          error: { code: -32600, message: "Invalid Request: expected a JSON-RPC object" },
        });
        continue;
      }
      await this.#acquire();
      const p = this.#forward(msg as Message).catch((err) => {
        this.#diag(`forward failed: ${errorMessage(err)}`);
      }).finally(() => {
        this.#inFlight.delete(p);
        this.#release();
      });
      this.#inFlight.add(p);
      if ((msg as Message).method === "initialize") await p; // the session exists before anything else
    }
  }

  async #acquire(): Promise<void> {
    if (this.#slots > 0) {
      this.#slots--;
      return;
    }
    await new Promise<void>((r) => this.#waiters.push(r));
  }

  #release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#slots++;
  }

  #isRequest(msg: Message): boolean {
    return typeof msg.method === "string" && msg.id !== undefined && msg.id !== null;
  }

  async #forward(msg: Message): Promise<void> {
    const started = Date.now();
    let delay = 200;
    while (true) {
      let link: Link;
      try {
        link = await this.#ensureLink();
      } catch (err) {
        if (Date.now() - started > LINK_GIVE_UP_MS || this.#noSpawn) {
          if (this.#isRequest(msg)) {
            this.#reply(msg, -32000, `Cannot reach the rsm daemon: ${errorMessage(err)}`);
          }
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
        continue;
      }
      const outcome = await this.#post(link, msg);
      if (outcome === "ok") return;
      this.#kill(link);
      if (outcome === "lost") {
        if (this.#isRequest(msg)) {
          this.#reply(
            msg,
            -32001,
            "daemon restarted during the call; it may or may not have run",
          );
        }
        return;
      }
      // unreached or session-gone: it never ran; send it again on a fresh link.
      if (Date.now() - started > LINK_GIVE_UP_MS) {
        if (this.#isRequest(msg)) this.#reply(msg, -32000, "Cannot reach the rsm daemon");
        return;
      }
    }
  }

  #kill(link: Link): void {
    if (link.dead) return;
    link.dead = true;
    link.getStream?.abort();
    link.client?.close();
    if (link.stream) {
      try {
        link.stream.conn.close();
      } catch { /* closed */ }
      for (const w of link.stream.waiting.values()) w.settle("lost");
      link.stream.waiting.clear();
    }
    if (this.#link === link) this.#link = null;
  }

  #ensureLink(): Promise<Link> {
    if (this.#link && !this.#link.dead) return Promise.resolve(this.#link);
    this.#linking ??= this.#connect().finally(() => {
      this.#linking = null;
    });
    return this.#linking;
  }

  /** Finds or starts the daemon; if the client has initialised before, replays that. */
  async #connect(): Promise<Link> {
    const handle = await findOrSpawnDaemon(this.#paths, { noSpawn: this.#noSpawn });
    const stream = this.#httpOnly ? undefined : await this.#openStream(handle);
    const link: Link = stream
      ? { handle, dead: false, base: handle.url, stream }
      : { handle, dead: false, ...await directLink(handle) };
    if (stream) this.#readStream(link, stream);
    if (this.#init) {
      const ok = await this.#replayInit(link);
      if (!ok) throw new Error("the daemon refused the replayed initialize");
      this.#diag(`reconnected to daemon pid ${handle.pid}; session re-initialised`);
    }
    this.#link = link;
    if (link.sessionId) this.#openGetStream(link);
    return link;
  }

  /**
   * The stream link to `handle`'s daemon: connect to its `mcp.sock`, send the hello (token,
   * this client's tool profile and format), and check the answer names the handle's pid (a
   * socket path can outlive its daemon). Undefined when there is none or it refuses: HTTP then.
   */
  async #openStream(handle: Handle): Promise<StreamConn | undefined> {
    if (!handle.mcp_socket || Deno.build.os === "windows") return undefined;
    let conn: Deno.Conn | undefined;
    try {
      conn = await Deno.connect({ transport: "unix", path: handle.mcp_socket });
      const lines = new LineReader(conn, MAX_LINE);
      const writer = new LineWriter(conn);
      const hello: Record<string, string> = { token: handle.token };
      if (this.#tools !== undefined) hello.tools = this.#tools;
      if (this.#format !== undefined) hello.format = this.#format;
      await writer.write(JSON.stringify(hello));
      const next = lines.next();
      next.catch(() => {}); // read on below; this only keeps a late failure handled
      const reply = await waitAtMost(next, 5000) ? JSON.parse(await next ?? "null") : null;
      if (reply?.ok === true && reply.pid === handle.pid) {
        return { conn, lines, writer, waiting: new Map() };
      }
      // a refused profile or format is this client's error: say it on stderr, then HTTP
      // answers each call with the same refusal
      if (reply?.ok === false) this.#diag(`stream link refused: ${reply.error}`);
    } catch { /* no such socket here: HTTP */ }
    try {
      conn?.close();
    } catch { /* closed */ }
    return undefined;
  }

  /** Every line from the daemon goes to stdout as it came, except answers to replays. */
  #readStream(link: Link, stream: StreamConn): void {
    (async () => {
      while (!link.dead) {
        const line = await stream.lines.next();
        if (line === null) break;
        const w = stream.waiting.size ? this.#answerTo(stream, line) : undefined;
        if (!w?.swallow) this.#writeLine(line);
        w?.settle();
      }
    })().catch(() => {}).finally(() => this.#kill(link));
  }

  /** The waiting request `line` answers (taken off the list), with how it settles. */
  #answerTo(
    stream: StreamConn,
    line: string,
  ): { swallow: boolean; settle: () => void } | undefined {
    let msg: Message | undefined;
    try {
      msg = JSON.parse(line);
    } catch { /* not ours to judge: passed on */ }
    if (!msg || msg.method !== undefined || msg.id === undefined || msg.id === null) return;
    const key = JSON.stringify(msg.id);
    const w = stream.waiting.get(key);
    if (!w) return;
    stream.waiting.delete(key);
    return { swallow: w.swallow, settle: () => w.settle(msg.error ? "refused" : "ok") };
  }

  /** Sends `msg` on the stream link; a request resolves when its answer has been passed on. */
  async #postStream(link: Link, stream: StreamConn, msg: Message, swallow = false) {
    let answered: Promise<PostOutcome> | undefined;
    if (this.#isRequest(msg)) {
      const key = JSON.stringify(msg.id);
      answered = new Promise((settle) => stream.waiting.set(key, { settle, swallow }));
    }
    try {
      await stream.writer.write(JSON.stringify(msg));
    } catch {
      this.#kill(link);
      return "lost";
    }
    if (msg.method === "notifications/initialized") this.#initialized = msg;
    const outcome = answered ? await answered : "ok";
    if (outcome === "ok" && msg.method === "initialize" && !swallow) this.#init = msg;
    return outcome;
  }

  async #replayInit(link: Link): Promise<boolean> {
    const init = this.#init!;
    if (link.stream) {
      const outcome = await this.#postStream(link, link.stream, init, true);
      if (outcome !== "ok") return false;
      if (this.#initialized) await this.#postStream(link, link.stream, this.#initialized);
      return true;
    }
    const res = await this.#fetch(link, init).catch(() => null);
    if (!res || !res.ok) {
      await res?.body?.cancel();
      return false;
    }
    link.sessionId = res.headers.get("mcp-session-id") ?? undefined;
    let answered = false;
    for await (const m of this.#messagesOf(res)) {
      if (m.id === init.id && (m.result || m.error)) {
        answered = !m.error;
        if (m.result?.protocolVersion) link.protocolVersion = String(m.result.protocolVersion);
      }
    }
    if (!answered) return false;
    if (this.#initialized) {
      const r = await this.#fetch(link, this.#initialized).catch(() => null);
      await r?.body?.cancel();
    }
    return true;
  }

  #headers(link: Link): Record<string, string> {
    const h: Record<string, string> = {
      authorization: `Bearer ${link.handle.token}`,
      accept: "application/json, text/event-stream",
      "content-type": "application/json",
    };
    // This client's own tool profile and format reach its MCP session (the daemon may have
    // been started by another client with other settings).
    if (this.#tools !== undefined) h["x-rsm-tools"] = this.#tools;
    if (this.#format !== undefined) h["x-rsm-format"] = this.#format;
    if (link.sessionId) h["mcp-session-id"] = link.sessionId;
    if (link.protocolVersion) h["mcp-protocol-version"] = link.protocolVersion;
    return h;
  }

  #fetch(link: Link, msg: Message): Promise<Response> {
    return mcpFetch(link, {
      method: "POST",
      headers: this.#headers(link),
      body: JSON.stringify(msg),
    });
  }

  async *#messagesOf(res: Response): AsyncGenerator<Message> {
    const type = res.headers.get("content-type") ?? "";
    if (type.includes("text/event-stream") && res.body) {
      for await (const data of sseData(res.body)) {
        try {
          yield JSON.parse(data);
        } catch { /* not a message */ }
      }
    } else if (type.includes("application/json")) {
      const body = await res.json();
      for (const m of Array.isArray(body) ? body : [body]) yield m;
    } else {
      await res.body?.cancel();
    }
  }

  async #post(link: Link, msg: Message): Promise<PostOutcome> {
    if (link.stream) {
      const outcome = await this.#postStream(link, link.stream, msg);
      return outcome === "refused" ? "ok" : outcome;
    }
    let res: Response;
    try {
      res = await this.#fetch(link, msg);
    } catch (err) {
      return isConnectError(err) ? "unreached" : "lost";
    }
    if (res.status === 404 && link.sessionId) {
      await res.body?.cancel();
      return "session-gone";
    }
    if (res.status === 401) {
      await res.body?.cancel();
      return "unreached"; // a new daemon with a new token took over the address
    }
    const isInit = msg.method === "initialize";
    if (isInit) link.sessionId = res.headers.get("mcp-session-id") ?? link.sessionId;
    if (res.status === 202) {
      await res.body?.cancel();
      if (msg.method === "notifications/initialized") {
        this.#initialized = msg;
        this.#openGetStream(link); // list-changed and other unprompted messages come on it
      }
      return "ok";
    }
    let answered = false;
    try {
      for await (const m of this.#messagesOf(res)) {
        if (msg.id !== undefined && m.id === msg.id && (m.result !== undefined || m.error)) {
          answered = true;
          if (isInit && m.result) {
            this.#init = msg;
            if (m.result.protocolVersion) link.protocolVersion = String(m.result.protocolVersion);
          }
        }
        this.#write(m);
      }
    } catch {
      if (this.#isRequest(msg) && !answered) return "lost";
    }
    if (this.#isRequest(msg) && !answered) {
      if (res.ok) return "lost";
      this.#reply(msg, -32603, `daemon answered HTTP ${res.status}`);
    }
    if (msg.method === "notifications/initialized") {
      this.#initialized = msg;
      this.#openGetStream(link);
    }
    return "ok";
  }

  /** Server→client messages not tied to a request (list-changed, logging) come on GET /mcp. */
  #openGetStream(link: Link): void {
    if (link.getStream || link.dead || !link.sessionId) return;
    const ctl = new AbortController();
    link.getStream = ctl;
    (async () => {
      let backoff = 500;
      while (!ctl.signal.aborted && !link.dead) {
        try {
          const res = await mcpFetch(link, {
            method: "GET",
            headers: { ...this.#headers(link), accept: "text/event-stream" },
            signal: ctl.signal,
          });
          if (res.status === 405 || res.status === 404) {
            await res.body?.cancel();
            return;
          }
          if (res.ok) {
            backoff = 500;
            for await (const m of this.#messagesOf(res)) this.#write(m);
          } else {
            await res.body?.cancel();
          }
        } catch (err) {
          if (ctl.signal.aborted) return;
          if (isConnectError(err)) {
            this.#kill(link);
            return;
          }
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    })();
  }

  #reply(msg: Message, code: number, message: string): void {
    this.#write({ jsonrpc: "2.0", id: msg.id ?? null, error: { code, message } });
  }

  #write(msg: Message): void {
    this.#writeLine(JSON.stringify(msg));
  }

  #writeLine(line: string): void {
    this.#out.write(line).catch(() => {
      // stdout closed: the client is gone
      this.#closing = true;
    });
  }

  #diag(text: string): void {
    try {
      Deno.stderr.writeSync(this.#enc.encode(`rsm stdio: ${text}\n`));
    } catch { /* stderr closed */ }
  }
}

/** A request to the daemon's `/mcp` over the link (its Unix socket or its TCP URL). */
function mcpFetch(link: Link, init: RequestInit): Promise<Response> {
  return fetch(new URL("/mcp", link.base), link.client ? { ...init, client: link.client } : init);
}

/**
 * The daemon's Unix socket, when its handle names one and it answers `/health` there: the
 * launcher then skips the TCP front door (which exists to bound slow remote-looking clients;
 * this one is the daemon's own). Anything else, or Windows, keeps the TCP URL.
 */
async function directLink(handle: Handle): Promise<Pick<Link, "base" | "client">> {
  if (!handle.socket || Deno.build.os === "windows") return { base: handle.url };
  let client: Deno.HttpClient | undefined;
  try {
    client = Deno.createHttpClient({ proxy: { transport: "unix", path: handle.socket } });
    const res = await fetch("http://localhost/health", {
      client,
      headers: { authorization: `Bearer ${handle.token}` },
      signal: AbortSignal.timeout(2000),
    });
    const health = res.ok ? await res.json() : await res.body?.cancel();
    // the same daemon as the handle's (a socket path can outlive its daemon)
    if (health?.pid === handle.pid) return { base: "http://localhost", client };
  } catch { /* no such socket here: TCP */ }
  client?.close();
  return { base: handle.url };
}

function isConnectError(err: unknown): boolean {
  const text = `${errorMessage(err)} ${errorMessage((err as { cause?: unknown })?.cause)}`;
  return /\(Connect\)|connection refused|os error 111|ECONNREFUSED|tcp connect error/i.test(text);
}
