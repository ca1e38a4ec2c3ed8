/**
 * Newline-delimited UTF-8 over a byte stream: the framing of the launcher's stream link to the
 * daemon (docs/architecture.md "The launcher"). Both ends use these two classes.
 */

/** Something bytes are read from (a `Deno.Conn`, `Deno.stdin`). */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
}

/** Something bytes are written to (a `Deno.Conn`, `Deno.stdout`). */
export interface ByteSink {
  write(p: Uint8Array): Promise<number>;
}

/** Thrown by {@link LineReader.next} when a line grows past its limit. */
export class LineTooLong extends Error {
  constructor(readonly limit: number) {
    super(`a line longer than ${limit} bytes`);
  }
}

/**
 * Reads lines (without their `\n`; a trailing `\r` is kept) from a byte source. The buffer
 * grows to the longest line seen, up to `maxLine`; each byte is scanned once.
 *
 * @example
 * ```ts
 * import { LineReader } from "./lines.ts";
 * const bytes = new TextEncoder().encode('{"a":1}\n{"b":2}\nlast');
 * let given = false;
 * const source = {
 *   read(p: Uint8Array) {
 *     if (given) return Promise.resolve(null);
 *     given = true;
 *     p.set(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const lines = new LineReader(source, 1024);
 * console.assert((await lines.next()) === '{"a":1}');
 * console.assert((await lines.next()) === '{"b":2}');
 * console.assert((await lines.next()) === "last"); // the unterminated tail at EOF
 * console.assert((await lines.next()) === null);
 * ```
 */
export class LineReader {
  #source: ByteSource;
  #max: number;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #scanned = 0;
  #eof = false;
  #decoder = new TextDecoder();

  constructor(source: ByteSource, maxLine: number) {
    this.#source = source;
    this.#max = maxLine;
  }

  /** The next line, or null at the end of the stream. */
  async next(): Promise<string | null> {
    while (true) {
      const nl = this.#buf.subarray(this.#scanned, this.#end).indexOf(0x0a);
      if (nl >= 0) {
        const at = this.#scanned + nl;
        const line = this.#decoder.decode(this.#buf.subarray(this.#start, at));
        this.#start = this.#scanned = at + 1;
        return line;
      }
      this.#scanned = this.#end;
      if (this.#end - this.#start > this.#max) throw new LineTooLong(this.#max);
      if (this.#eof) {
        if (this.#start === this.#end) return null;
        const tail = this.#decoder.decode(this.#buf.subarray(this.#start, this.#end));
        this.#start = this.#scanned = this.#end;
        return tail;
      }
      this.#room();
      const n = await this.#source.read(this.#buf.subarray(this.#end));
      if (n === null) this.#eof = true;
      else this.#end += n;
    }
  }

  /** Makes free space after `#end`: moves the partial line to the front, or grows. */
  #room(): void {
    const used = this.#end - this.#start;
    if (this.#start > 0 && (used === 0 || this.#end === this.#buf.length)) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#scanned -= this.#start;
      this.#start = 0;
      this.#end = used;
    }
    if (this.#end === this.#buf.length) {
      const bigger = new Uint8Array(this.#buf.length * 2);
      bigger.set(this.#buf.subarray(0, this.#end));
      this.#buf = bigger;
    }
  }
}

/**
 * Writes lines in order. Lines queued while a write is under way go out together in the next
 * write, so a burst of small messages costs few syscalls.
 */
export class LineWriter {
  #sink: ByteSink;
  #pending: string[] = [];
  #running: Promise<void> | null = null;
  #enc = new TextEncoder();
  #failed: unknown = undefined;

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  /** Queues `line` (no `\n` inside) and resolves once it is written; rejects if the sink fails. */
  write(line: string): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    this.#pending.push(line);
    this.#running ??= this.#drain();
    return this.#running;
  }

  /** Resolves when everything queued so far is written (or the sink failed). */
  async flushed(): Promise<void> {
    while (this.#running) await this.#running.catch(() => {});
  }

  async #drain(): Promise<void> {
    try {
      // let the current turn queue more lines before the first syscall
      await Promise.resolve();
      while (this.#pending.length) {
        const bytes = this.#enc.encode(this.#pending.join("\n") + "\n");
        this.#pending = [];
        let off = 0;
        while (off < bytes.length) off += await this.#sink.write(bytes.subarray(off));
      }
    } catch (err) {
      this.#failed = err;
      this.#pending = [];
      throw err;
    } finally {
      // cleared in the same turn the loop ends, so a later write() starts a new drain
      this.#running = null;
    }
  }
}
