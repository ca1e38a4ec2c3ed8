/**
 * The daemon's TCP front door: it accepts loopback connections itself and passes a connection
 * on to the HTTP server (`Deno.serve` on a private Unix socket) only once a complete request
 * head has arrived. `Deno.serve` has no header-read timeout, so without this a client that opens
 * connections and never finishes a request would hold each one (and a file descriptor) forever.
 *
 * Rules, per connection:
 * - a request head must be complete within `headMs` of its first byte (for the first request,
 *   of the connection being accepted), and its body within `bodyMs` after the head;
 * - otherwise the connection gets `408 Request Timeout` (when nothing was passed on yet) and is
 *   closed. Connections waiting for a head are also capped (`maxPending`); past the cap the
 *   oldest waiting one is closed first, so a flood cannot starve real clients.
 *
 * Once a request is complete, bytes flow both ways untouched (responses, SSE streams).
 * An idle keep-alive connection between requests is left to the HTTP server.
 */

/** Options for {@link serveFront}. */
export interface FrontOptions {
  hostname: string;
  port: number;
  /** The Unix socket the HTTP server listens on. */
  upstream: string;
  /** Time for a complete request head, from its first byte. Default 10 s. */
  headMs?: number;
  /** Time for a request body, after its head. Default 30 s. */
  bodyMs?: number;
  /** Connections waiting for a head at most; the oldest is closed past it. Default 256. */
  maxPending?: number;
  /** Called when a connection is dropped for being slow (for the log). */
  onSlow?: (why: string) => void;
}

/** A running front. */
export interface Front {
  addr: Deno.NetAddr;
  /** Connections accepted and not yet closed. */
  open(): number;
  /** Connections closed for being too slow, since start. */
  dropped(): number;
  /** Stops accepting and closes every connection. */
  close(): void;
}

const MAX_HEAD = 64 * 1024;
const LATIN1 = new TextDecoder("latin1");
const TIMEOUT_RESPONSE = new TextEncoder().encode(
  "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
);

/** Listens on `hostname:port` and relays complete requests to `upstream`. */
export function serveFront(options: FrontOptions): Front {
  const door = new FrontDoor(options);
  void door.acceptLoop();
  return {
    addr: door.listener.addr as Deno.NetAddr,
    open: () => door.conns.size,
    dropped: () => door.dropped,
    close: () => door.close(),
  };
}

/** The listener and its connections (see the module comment). */
class FrontDoor {
  readonly headMs: number;
  readonly bodyMs: number;
  readonly maxPending: number;
  readonly listener: Deno.TcpListener;
  readonly conns = new Set<Relay>();
  /** Connections waiting for a head, oldest first (a Set keeps insertion order). */
  readonly waiting = new Set<Relay>();
  dropped = 0;

  constructor(readonly options: FrontOptions) {
    this.headMs = options.headMs ?? 10_000;
    this.bodyMs = options.bodyMs ?? 30_000;
    this.maxPending = options.maxPending ?? 256;
    this.listener = Deno.listen({ hostname: options.hostname, port: options.port });
  }

  async acceptLoop(): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.listener.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return; // closed
        }
        // out of file descriptors or a transient accept error: keep serving
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      // A response is relayed in pieces (head, then body chunks): with Nagle's algorithm the
      // second piece waits for the client's delayed ACK, ~40 ms per tool call.
      conn.setNoDelay(true);
      const relay = new Relay(this, conn);
      this.conns.add(relay);
      this.waiting.add(relay);
      if (this.waiting.size > this.maxPending) {
        const oldest = this.waiting.values().next().value!;
        this.dropped++;
        this.options.onSlow?.("too many connections waiting for a request head");
        oldest.close();
      }
      void relay.run();
    }
  }

  close(): void {
    try {
      this.listener.close();
    } catch { /* closed */ }
    for (const c of [...this.conns]) c.close();
  }
}

/** One client connection: held until its first request head is complete, then relayed. */
class Relay {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #upstream: Deno.UnixConn | undefined;
  #closed = false;
  #framer = new RequestFramer();
  #passed = false;

  constructor(readonly door: FrontDoor, readonly conn: Deno.TcpConn) {}

  async run(): Promise<void> {
    this.#wait(this.door.headMs, "no complete request head");
    const buf = new Uint8Array(64 * 1024);
    let held: Uint8Array[] = [];
    try {
      while (!this.#closed) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        const ev = this.#framer.feed(chunk);
        if (ev.error) {
          this.#slow(ev.error);
          return;
        }
        if (ev.state === "idle" || ev.state === "opaque") this.#clear();
        else if (ev.state === "head") {
          // a later request's head gets its own time; the first one's counts from accept
          if (ev.headStarted && this.#framer.heads > 0) {
            this.#wait(this.door.headMs, "request head too slow");
          }
        } else if (ev.headEnded) this.#wait(this.door.bodyMs, "request body too slow");
        if (!this.#upstream) {
          held.push(chunk);
          if (this.#framer.heads === 0) continue; // first head still incomplete
          this.#upstream = await Deno.connect({
            transport: "unix",
            path: this.door.options.upstream,
          });
          if (this.#closed) return;
          this.#passed = true;
          this.door.waiting.delete(this);
          this.#pump(this.#upstream);
          for (const c of held) await writeAll(this.#upstream, c);
          held = [];
          continue;
        }
        await writeAll(this.#upstream, chunk);
      }
      // the client finished sending (half-close); let the response still come back
      await this.#upstream?.closeWrite().catch(() => {});
      if (!this.#upstream) this.close();
    } catch {
      this.close();
    }
  }

  #pump(up: Deno.UnixConn): void {
    (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        while (true) {
          const n = await up.read(buf);
          if (n === null) break;
          await writeAll(this.conn, buf.subarray(0, n));
        }
      } catch { /* either side gone */ }
      this.close();
    })();
  }

  #wait(ms: number, why: string): void {
    this.#clear();
    this.#timer = setTimeout(() => this.#slow(why), ms);
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #slow(why: string): void {
    if (this.#closed) return;
    this.door.dropped++;
    this.door.options.onSlow?.(why);
    if (!this.#passed) {
      // best effort: tell an honest but slow client why, without waiting on it
      this.conn.write(TIMEOUT_RESPONSE).catch(() => {}).finally(() => this.close());
      setTimeout(() => this.close(), 100);
      return;
    }
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clear();
    this.door.conns.delete(this);
    this.door.waiting.delete(this);
    try {
      this.conn.close();
    } catch { /* closed */ }
    try {
      this.#upstream?.close();
    } catch { /* closed */ }
  }
}
async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await w.write(bytes.subarray(off));
}

type FramerState =
  | "idle"
  | "head"
  | "body"
  | "chunk-size"
  | "chunk-data"
  | "chunk-end"
  | "trailer"
  | "opaque";

/**
 * Follows HTTP/1.1 request framing on the client's side of a connection, just enough to know
 * when a request starts, when its head ends and when its body ends (Content-Length or chunked).
 * After an `Upgrade` request the bytes are no longer HTTP and are not followed.
 */
export class RequestFramer {
  state: FramerState = "idle";
  /** Request heads completed so far. */
  heads = 0;
  #head: number[] = [];
  #remaining = 0;
  #line = "";

  /** Feeds bytes; says where the connection stands and what happened in them. */
  feed(bytes: Uint8Array): {
    state: FramerState;
    headStarted: boolean;
    headEnded: boolean;
    error?: string;
  } {
    let headStarted = false;
    let headEnded = false;
    let i = 0;
    while (i < bytes.length && this.state !== "opaque") {
      const b = bytes[i]!;
      switch (this.state) {
        case "idle":
          if (b === 13 || b === 10) {
            i++; // blank lines between requests are allowed
            break;
          }
          this.state = "head";
          this.#head = [];
          headStarted = true;
          break;
        case "head": {
          this.#head.push(b);
          i++;
          const h = this.#head;
          const n = h.length;
          if (b === 10 && (h[n - 2] === 10 || (h[n - 2] === 13 && h[n - 3] === 10))) {
            headEnded = true;
            this.heads++;
            this.#startBody(LATIN1.decode(new Uint8Array(h)));
          } else if (n > MAX_HEAD) {
            return { state: this.state, headStarted, headEnded, error: "request head too large" };
          }
          break;
        }
        case "body":
        case "chunk-data": {
          const take = Math.min(this.#remaining, bytes.length - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.state = this.state === "body" ? "idle" : "chunk-end";
          break;
        }
        case "chunk-end": // the CRLF after a chunk's data
          i++;
          if (b === 10) this.state = "chunk-size";
          break;
        case "chunk-size":
        case "trailer":
          i++;
          if (b !== 10) {
            this.#line += String.fromCharCode(b);
            if (this.#line.length > 4096) {
              return { state: this.state, headStarted, headEnded, error: "bad chunked body" };
            }
            break;
          }
          {
            const line = this.#line.replace(/\r$/, "");
            this.#line = "";
            if (this.state === "trailer") {
              if (line === "") this.state = "idle";
              break;
            }
            const size = parseInt(line.split(";")[0]!.trim(), 16);
            if (!Number.isFinite(size) || size < 0) {
              return { state: this.state, headStarted, headEnded, error: "bad chunk size" };
            }
            if (size === 0) this.state = "trailer";
            else {
              this.#remaining = size;
              this.state = "chunk-data";
            }
          }
          break;
      }
    }
    return { state: this.state, headStarted, headEnded };
  }

  #startBody(head: string): void {
    this.#head = [];
    const lines = head.split(/\r?\n/);
    let length = 0;
    let chunked = false;
    let upgrade = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === "content-length") length = Number(value) || 0;
      else if (name === "transfer-encoding") chunked = value.split(",").pop()!.trim() === "chunked";
      else if (name === "upgrade") upgrade = true;
    }
    if (upgrade || /^CONNECT /i.test(lines[0]!)) this.state = "opaque";
    else if (chunked) this.state = "chunk-size";
    else if (length > 0) {
      this.#remaining = length;
      this.state = "body";
    } else this.state = "idle";
  }
}
