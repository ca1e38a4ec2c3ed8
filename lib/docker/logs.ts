/**
 * Container logs: stdout and stderr demultiplexed and interleaved in time order (the engine's
 * timestamps are always requested and used for ordering), collected in a {@link Capture}
 * (head + tail in memory, the whole in the output store when it is large).
 */
import type { IncomingMessage } from "node:http";
import { parseDuration } from "../duration.ts";
import { RsmError } from "../errors.ts";
import type { DockerHost } from "./host.ts";
import { FrameSplitter } from "./frames.ts";
import { Capture, concatBytes } from "../output/mod.ts";

/** Options for {@link containerLogs}. */
export interface LogsOptions {
  /** Last N lines, or "all". Default 200. */
  tail?: number | "all" | undefined;
  /** RFC3339 time, unix seconds, or a duration back from now (`5m`). */
  since?: string | undefined;
  until?: string | undefined;
  /** Keep the engine's timestamp at the start of each line. */
  timestamps?: boolean | undefined;
  stdout?: boolean | undefined;
  stderr?: boolean | undefined;
  /** Where the text goes (default: a Capture without a store). */
  sink?: Capture | undefined;
  signal?: AbortSignal | undefined;
}

/** The logs (in time order) and how many lines they hold. */
export interface LogsResult {
  logs: Capture;
  lines: number;
}

/** Frames held back to put stdout and stderr lines in time order before they are kept. */
const REORDER_WINDOW = 1000;

/**
 * Converts `since`/`until` to the engine's form (unix seconds, fractional).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(logTime("2024-01-02T03:04:05Z"), "1704164645.000");
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
        "BAD_ARGUMENT",
        `Cannot read time "${value}": expected RFC3339 like 2024-01-02T03:04:05Z or a duration like 5m`,
      );
    }
    return (t / 1000).toFixed(3);
  }
  try {
    return ((now - parseDuration(v)) / 1000).toFixed(3);
  } catch {
    throw new RsmError(
      "BAD_ARGUMENT",
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

function before(a: Frame, b: Frame): boolean {
  return a.key < b.key || (a.key === b.key && a.seq < b.seq);
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
    const b = this.#lineBuf.length ? concatBytes([this.#lineBuf, chunk]) : chunk;
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
        ...(options.signal ? { abortSignal: options.signal } : {}),
        statusCodes: { 200: true, 404: "no such container", 500: "server error" },
      }, (err: unknown, stream: unknown) => err ? reject(err) : resolve(stream as IncomingMessage));
    });
    const sink = options.sink ?? new Capture();
    const window: Frame[] = [];
    const enc = new TextEncoder();
    const emit = (f: Frame) => {
      if (options.timestamps && f.ts) sink.push(enc.encode(`${f.ts} `));
      sink.push(f.body);
    };
    let seq = 0;
    let lines = 0;
    const demux = new Demux(Boolean(info.Config?.Tty), (body) => {
      lines++;
      // "2024-01-02T03:04:05.123456789Z text…"
      let ts = "";
      let i = 0;
      while (i < body.length && i < 40 && body[i] !== 32) i++;
      if (i < body.length && body[i] === 32 && body[0]! >= 48 && body[0]! <= 57) {
        ts = new TextDecoder().decode(body.subarray(0, i));
        body = body.subarray(i + 1);
      }
      const f: Frame = { key: tsKey(ts), ts, body: body.slice(), seq: seq++ };
      let at = window.length; // insertion keeps the window sorted (frames come nearly sorted)
      while (at > 0 && before(f, window[at - 1]!)) at--;
      window.splice(at, 0, f);
      if (window.length > REORDER_WINDOW) emit(window.shift()!);
    });
    await new Promise<void>((resolve, reject) => {
      res.on("data", (c: Uint8Array) => demux.push(c));
      res.on("end", () => resolve());
      res.on("error", reject);
    });
    demux.end();
    for (const f of window) emit(f);
    await sink.end();
    return { logs: sink, lines };
  });
}
