/**
 * Container logs: stdout and stderr demultiplexed and interleaved in time order (the engine's
 * timestamps are always requested and used for ordering), bounded head + tail in memory.
 */
import type { IncomingMessage } from "node:http";
import { parseDuration } from "../duration.ts";
import { RsmError } from "../errors.ts";
import type { DockerHost } from "./host.ts";
import { concat, FrameSplitter } from "./frames.ts";

/** Options for {@link containerLogs}. */
export interface LogsOptions {
  /** Last N lines, or "all". Default 200. */
  tail?: number | "all";
  /** RFC3339 time, unix seconds, or a duration back from now (`5m`). */
  since?: string;
  until?: string;
  /** Keep the engine's timestamp at the start of each line. */
  timestamps?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  /** Keep at most this many bytes from the start and from the end. Default 32 KiB each. */
  maxBytes?: number;
  signal?: AbortSignal;
}

/** The logs text and how much was left out. */
export interface LogsResult {
  text: string;
  lines: number;
  omitted_bytes: number;
}

/**
 * Converts `since`/`until` to the engine's form (unix seconds, fractional).
 *
 * @example
 * ```ts
 * logTime("2024-01-02T03:04:05Z"); // "1704164645"
 * logTime("5m"); // now - 300 s
 * ```
 */
export function logTime(value: string, now = Date.now()): string {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return v;
  if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
    const t = Date.parse(v);
    if (Number.isNaN(t)) {
      throw new RsmError(
        "BAD_REQUEST",
        `Cannot read time "${value}": expected RFC3339 like 2024-01-02T03:04:05Z or a duration like 5m`,
      );
    }
    return (t / 1000).toFixed(3);
  }
  try {
    return ((now - parseDuration(v)) / 1000).toFixed(3);
  } catch {
    throw new RsmError(
      "BAD_REQUEST",
      `Cannot read time "${value}": expected RFC3339 like 2024-01-02T03:04:05Z, unix seconds, or a duration back from now like 5m`,
    );
  }
}

interface Frame {
  key: string;
  ts: string;
  body: Uint8Array;
  seq: number;
}

/** Sort key of an RFC3339Nano timestamp (fraction padded to 9 digits). */
function tsKey(ts: string): string {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(ts);
  if (!m) return ts;
  return `${m[1]}.${(m[2] ?? "").padEnd(9, "0")}`;
}

/** Splits the raw log stream into frames (multiplexed unless `tty`, then into lines). */
class Demux {
  #lineBuf = new Uint8Array(0);
  #frames: FrameSplitter;
  constructor(private tty: boolean, private onFrame: (body: Uint8Array) => void) {
    this.#frames = new FrameSplitter((_which, body) => onFrame(body));
  }
  push(chunk: Uint8Array): void {
    if (!this.tty) return this.#frames.push(chunk);
    const b = this.#lineBuf.length ? concat(this.#lineBuf, chunk) : chunk;
    let start = 0;
    for (let i = 0; i < b.length; i++) {
      if (b[i] === 10) {
        this.onFrame(b.subarray(start, i + 1));
        start = i + 1;
      }
    }
    this.#lineBuf = b.slice(start);
  }
  end(): void {
    const rest = this.tty ? this.#lineBuf : this.#frames.pending;
    if (rest.length) this.onFrame(rest);
    this.#lineBuf = new Uint8Array(0);
  }
}

/** Reads a container's logs (see module doc). */
export function containerLogs(
  host: DockerHost,
  container: string,
  options: LogsOptions = {},
): Promise<LogsResult> {
  const max = options.maxBytes ?? 32 * 1024;
  const query: Record<string, unknown> = {
    stdout: options.stdout ?? true,
    stderr: options.stderr ?? true,
    timestamps: true,
    follow: false,
    tail: options.tail === undefined ? 200 : options.tail,
  };
  if (options.since) query.since = logTime(options.since);
  if (options.until) query.until = logTime(options.until);
  return host.use(`read logs of container ${container}`, async (d) => {
    const info = await d.getContainer(container).inspect();
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      d.modem.dial({
        path: `/containers/${encodeURIComponent(container)}/logs?`,
        method: "GET",
        options: query,
        isStream: true,
        abortSignal: options.signal,
        statusCodes: { 200: true, 404: "no such container", 500: "server error" },
      }, (err: unknown, stream: unknown) => err ? reject(err) : resolve(stream as IncomingMessage));
    });
    const head: Frame[] = [];
    let headBytes = 0;
    const tail: Frame[] = [];
    let tailBytes = 0;
    let omitted = 0;
    let seq = 0;
    let lines = 0;
    const demux = new Demux(Boolean(info.Config?.Tty), (body) => {
      lines++;
      // "2024-01-02T03:04:05.123456789Z text…"
      let ts = "";
      let i = 0;
      while (i < body.length && i < 40 && body[i] !== 32) i++;
      if (i < body.length && body[i] === 32 && body[0] >= 48 && body[0] <= 57) {
        ts = new TextDecoder().decode(body.subarray(0, i));
        body = body.subarray(i + 1);
      }
      const f: Frame = { key: tsKey(ts), ts, body: body.slice(), seq: seq++ };
      const size = f.body.length + (options.timestamps ? ts.length + 1 : 0);
      if (headBytes + size <= max && tail.length === 0) {
        head.push(f);
        headBytes += size;
        return;
      }
      tail.push(f);
      tailBytes += size;
      while (tailBytes > max && tail.length > 1) {
        const gone = tail.shift()!;
        const s = gone.body.length + (options.timestamps ? gone.ts.length + 1 : 0);
        tailBytes -= s;
        omitted += s;
      }
    });
    await new Promise<void>((resolve, reject) => {
      res.on("data", (c: Uint8Array) => demux.push(c));
      res.on("end", () => resolve());
      res.on("error", reject);
    });
    demux.end();
    const render = (frames: Frame[]) => {
      frames.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : a.seq - b.seq);
      const dec = new TextDecoder();
      return frames.map((f) => (options.timestamps && f.ts ? `${f.ts} ` : "") + dec.decode(f.body))
        .join("");
    };
    let text = render(head);
    if (omitted > 0) {
      text += `${text.endsWith("\n") || !text ? "" : "\n"}[… ${omitted} bytes omitted …]\n`;
    }
    text += render(tail);
    return { text, lines, omitted_bytes: omitted };
  });
}
