/**
 * A job's output, kept complete: stdout, stderr and both interleaved in arrival order.
 *
 * Small outputs stay in memory; once a job outlives its call ({@link JobOutput.spill}) or its
 * output passes 256 KiB, everything goes to three files in the jobs directory (mode 0600), so
 * a job's output survives a daemon restart and never grows the daemon's memory. Each stream
 * keeps at most `maxBytes` (default 1 GiB); what arrives beyond is counted in `dropped`.
 */
import { join } from "node:path";

/** A job stream: stdout, stderr, or both interleaved in arrival order. */
export type JobStream = "stdout" | "stderr" | "both";
const STREAMS: readonly JobStream[] = ["stdout", "stderr", "both"];
const EXT: Record<JobStream, string> = { stdout: "out", stderr: "err", both: "all" };
const MEMORY_LIMIT = 256 * 1024;

/** Options for {@link JobOutput}. */
export interface JobOutputOptions {
  /** Bytes kept per stream (default 1 GiB). */
  maxBytes?: number | undefined;
}

/** The complete output of one job (see module doc). */
export class JobOutput {
  readonly #dir: string;
  readonly #id: string;
  readonly #max: number;
  #mem: Record<JobStream, Uint8Array[]> = { stdout: [], stderr: [], both: [] };
  #size: Record<JobStream, number> = { stdout: 0, stderr: 0, both: 0 };
  #files: Record<JobStream, Deno.FsFile> | undefined;
  /** Whether the output lives in files (from spill or restore on). */
  #onDisk = false;
  #tail: Uint8Array = new Uint8Array(0);
  #closed = false;
  /** Bytes left out because a stream passed its limit. */
  dropped = 0;

  constructor(dir: string, id: string, options: JobOutputOptions = {}) {
    this.#dir = dir;
    this.#id = id;
    this.#max = options.maxBytes ?? 1 << 30;
  }

  /** Re-opens the files a previous daemon wrote for job `id` (missing files: empty output). */
  static restore(dir: string, id: string, options: JobOutputOptions = {}): JobOutput {
    const out = new JobOutput(dir, id, options);
    let any = false;
    for (const s of STREAMS) {
      try {
        out.#size[s] = Deno.statSync(out.#path(s)).size;
        any = true;
      } catch { /* none */ }
    }
    if (any) {
      out.#onDisk = true;
      out.#tail = out.#readSync("both", Math.max(0, out.#size.both - 4096), 4096);
    }
    return out;
  }

  #path(s: JobStream): string {
    return join(this.#dir, `${this.#id}.${EXT[s]}`);
  }

  #openFiles(truncate: boolean): void {
    Deno.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    const open = (s: JobStream) =>
      Deno.openSync(this.#path(s), {
        create: true,
        append: !truncate,
        write: true,
        truncate,
        mode: 0o600,
      });
    this.#files = { stdout: open("stdout"), stderr: open("stderr"), both: open("both") };
    this.#onDisk = true;
  }

  /** Bytes in `stream` so far. */
  size(stream: JobStream): number {
    return this.#size[stream];
  }

  /** Appends a chunk of `stream`. */
  append(stream: "stdout" | "stderr", chunk: Uint8Array): void {
    if (this.#closed || !chunk.length) return;
    const room = this.#max - this.#size[stream];
    if (room < chunk.length) {
      this.dropped += chunk.length - Math.max(0, room);
      if (room <= 0) return;
      chunk = chunk.subarray(0, room);
    }
    if (this.#onDisk && !this.#files) this.#openFiles(false);
    for (const s of [stream, "both"] as const) {
      if (this.#files) writeAll(this.#files[s], chunk);
      else this.#mem[s].push(chunk.slice());
      this.#size[s] += chunk.length;
    }
    const t = new Uint8Array(Math.min(4096, this.#tail.length + chunk.length));
    const fromChunk = Math.min(chunk.length, t.length);
    t.set(this.#tail.subarray(this.#tail.length - (t.length - fromChunk)), 0);
    t.set(chunk.subarray(chunk.length - fromChunk), t.length - fromChunk);
    this.#tail = t;
    if (!this.#onDisk && this.#size.both > MEMORY_LIMIT) this.spill();
  }

  /** Moves the output to files; later chunks are appended there. */
  spill(): void {
    if (this.#onDisk || this.#closed) return;
    this.#openFiles(true);
    for (const s of STREAMS) {
      for (const c of this.#mem[s]) writeAll(this.#files![s], c);
      this.#mem[s] = [];
    }
  }

  /** Forgets everything so far (a durable job re-read from the server after a restart). */
  reset(): void {
    for (const s of STREAMS) {
      this.#mem[s] = [];
      this.#size[s] = 0;
    }
    this.#tail = new Uint8Array(0);
    this.dropped = 0;
    if (this.#onDisk) {
      if (this.#files) { for (const f of Object.values(this.#files)) f.close(); }
      this.#openFiles(true);
    }
  }

  /** Up to `length` bytes of `stream` from `offset`. */
  read(stream: JobStream, offset: number, length: number): Uint8Array {
    return this.#readSync(stream, offset, length);
  }

  #readSync(stream: JobStream, offset: number, length: number): Uint8Array {
    const end = Math.min(this.#size[stream], offset + length);
    if (end <= offset) return new Uint8Array(0);
    const out = new Uint8Array(end - offset);
    if (!this.#onDisk) {
      let pos = 0;
      let o = 0;
      for (const c of this.#mem[stream]) {
        const cEnd = pos + c.length;
        if (cEnd > offset && pos < end) {
          const from = Math.max(offset, pos) - pos;
          const to = Math.min(end, cEnd) - pos;
          out.set(c.subarray(from, to), o);
          o += to - from;
        }
        pos = cEnd;
        if (pos >= end) break;
      }
      return out;
    }
    const f = Deno.openSync(this.#path(stream), { read: true });
    try {
      f.seekSync(offset, Deno.SeekMode.Start);
      let o = 0;
      while (o < out.length) {
        const n = f.readSync(out.subarray(o));
        if (n === null || n === 0) break;
        o += n;
      }
      return out.subarray(0, o);
    } finally {
      f.close();
    }
  }

  /** The last `lines` lines of both streams (from the last 4 KiB). */
  tail(lines = 5): string {
    const text = new TextDecoder().decode(this.#tail).replace(/^[\x80-\xbf]+/, "");
    const all = text.split("\n");
    if (all.length && all[all.length - 1] === "") all.pop();
    return all.slice(-lines).join("\n");
  }

  /** The latest non-empty output line, without escape sequences (for progress messages). */
  lastLine(): string {
    return lastLineOf(this.#tail.subarray(-1024));
  }

  /**
   * Lines of `stream` matching `re`, numbered from 1, at most `limit` of them; reads the
   * stream in 1 MiB pieces so a large output is never loaded whole.
   */
  grep(stream: JobStream, re: RegExp, limit = 1000): { line: number; text: string }[] {
    const found: { line: number; text: string }[] = [];
    const dec = new TextDecoder();
    let carry = "";
    let lineNo = 0;
    const step = 1 << 20;
    for (let off = 0; off < this.#size[stream] && found.length < limit; off += step) {
      const text = carry + dec.decode(this.read(stream, off, step), { stream: true });
      const lines = text.split("\n");
      carry = lines.pop()!;
      for (const l of lines) {
        lineNo++;
        if (re.test(l)) found.push({ line: lineNo, text: l });
        if (found.length >= limit) break;
      }
    }
    carry += dec.decode();
    if (carry && found.length < limit && re.test(carry)) {
      found.push({ line: lineNo + 1, text: carry });
    }
    return found;
  }

  /** Closes the files (the data stays on disk). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#files) { for (const f of Object.values(this.#files)) f.close(); }
    this.#files = undefined;
  }

  /** Closes and deletes the files. */
  remove(): void {
    const spilled = this.#onDisk;
    this.close();
    this.#mem = { stdout: [], stderr: [], both: [] };
    if (!spilled) return;
    for (const s of STREAMS) {
      try {
        Deno.removeSync(this.#path(s));
      } catch { /* already gone */ }
    }
  }
}

/**
 * The last non-empty line of terminal output, without escape sequences or control characters,
 * at most 200 characters (for progress messages).
 */
export function lastLineOf(bytes: Uint8Array): string {
  const lines = new TextDecoder().decode(bytes).split(/\r?\n|\r/).map((l) =>
    l
      // deno-lint-ignore no-control-regex
      .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, "")
      // deno-lint-ignore no-control-regex
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
      // deno-lint-ignore no-control-regex
      .replace(/[\x00-\x1f\x7f]/g, "")
      .trim()
  ).filter(Boolean);
  return (lines.at(-1) ?? "").slice(0, 200);
}

function writeAll(f: Deno.FsFile, data: Uint8Array): void {
  let o = 0;
  while (o < data.length) o += f.writeSync(data.subarray(o));
}
