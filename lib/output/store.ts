/**
 * The output store: whenever a result has to leave text out, the full text is kept here so
 * the model can page or search it later with `output_read` (see the README, "Output store").
 *
 * One file per output in a directory of the state dir (dir 0700, files 0600). Bounded: each
 * output keeps at most `maxPerOutput` bytes (default 256 MiB; what arrives beyond is counted
 * but not kept), and all outputs together at most `maxTotal` (default 2 GiB; the oldest
 * finished outputs are evicted first). Outputs found on disk at start-up are served again.
 */
import { join } from "node:path";
import { concatBytes } from "./bytes.ts";

/** Options for {@link OutputStore}. */
export interface OutputStoreOptions {
  /** Bytes kept per output (default 256 MiB). */
  maxPerOutput?: number | undefined;
  /** Bytes kept in all (default 2 GiB). */
  maxTotal?: number | undefined;
  /** Called when a write fails (disk full…): the output is marked incomplete, never thrown. */
  onError?: ((message: string, error: unknown) => void) | undefined;
}

/** Facts about one stored output. */
export interface OutputInfo {
  id: string;
  /** What produced it, e.g. `ssh_exec web1 stdout`. */
  label: string;
  /** Bytes the producer emitted (may exceed `stored_bytes` past the per-output cap). */
  total_bytes: number;
  /** Bytes kept and readable. */
  stored_bytes: number;
  /** Still being written. */
  open: boolean;
  created_at: string;
}

/** One grep hit (1-based line number). */
export interface GrepLine {
  line: number;
  /** Byte offset of the line's start. */
  offset: number;
  text: string;
  /** True for a line that matched, false for a context line. */
  match: boolean;
}

/** A writer for an output that is still arriving (an exec's stdout, a job's log). */
export interface OutputWriter {
  readonly id: string;
  /** Appends bytes (copied); never throws, never blocks: writes are queued in order. */
  append(bytes: Uint8Array): void;
  /** Waits for every queued write and closes the file. Idempotent. */
  close(): Promise<void>;
}

interface Entry {
  info: OutputInfo;
  file?: Deno.FsFile | undefined;
  /** Queued writes, in order. */
  chain: Promise<void>;
  created: number;
}

const ID_CHARS = "abcdefghijkmnpqrstuvwxyz23456789";

/** Store of full texts behind cut results. One per daemon. */
export class OutputStore {
  readonly dir: string;
  readonly maxPerOutput: number;
  readonly maxTotal: number;
  readonly #onError: NonNullable<OutputStoreOptions["onError"]>;
  readonly #entries = new Map<string, Entry>();
  #stored = 0;
  #evicted = 0;
  #ready: Promise<void> | undefined;
  readonly #removing = new Set<Promise<void>>();
  #closed = false;

  constructor(dir: string, options: OutputStoreOptions = {}) {
    this.dir = dir;
    this.maxPerOutput = options.maxPerOutput ?? 256 * 1024 * 1024;
    this.maxTotal = options.maxTotal ?? 2 * 1024 * 1024 * 1024;
    this.#onError = options.onError ?? (() => {});
  }

  /**
   * Creates the directory and takes up outputs left by an earlier daemon. Called once by the
   * daemon; every other method waits for it.
   */
  start(): Promise<void> {
    this.#ready ??= this.#load();
    return this.#ready;
  }

  async #load(): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (Deno.build.os !== "windows") await Deno.chmod(this.dir, 0o700);
    const found: Entry[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      if (!e.isFile || !/^o-[a-z0-9]{6,16}$/.test(e.name)) continue;
      try {
        const st = await Deno.stat(join(this.dir, e.name));
        const created = st.mtime?.getTime() ?? Date.now();
        found.push({
          info: {
            id: e.name,
            label: "(from an earlier daemon)",
            total_bytes: st.size,
            stored_bytes: st.size,
            open: false,
            created_at: new Date(created).toISOString(),
          },
          chain: Promise.resolve(),
          created,
        });
      } catch { /* vanished */ }
    }
    found.sort((a, b) => a.created - b.created);
    for (const entry of found) {
      if (this.#entries.has(entry.info.id)) continue; // written by this daemon meanwhile
      this.#entries.set(entry.info.id, entry);
      this.#stored += entry.info.stored_bytes;
    }
    this.#evict();
  }

  /**
   * Starts a new output and returns its writer. The id is known at once, so a result can name
   * it while the text is still being written.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OutputStore } from "./store.ts";
   *
   * const store = new OutputStore(await Deno.makeTempDir());
   * const w = store.create("ssh_exec web1 stdout");
   * w.append(new TextEncoder().encode("hello\n"));
   * await w.close();
   * assert.equal(new TextDecoder().decode(await store.read(w.id, 0, 100)), "hello\n");
   * await store.close();
   * ```
   */
  create(label: string): OutputWriter {
    if (this.#closed) throw new Error("Cannot store output: the output store is closed");
    const id = this.#newId();
    const entry: Entry = {
      info: {
        id,
        label,
        total_bytes: 0,
        stored_bytes: 0,
        open: true,
        created_at: new Date().toISOString(),
      },
      chain: (this.#ready ?? this.start()).then(async () => {
        entry.file = await Deno.open(join(this.dir, id), {
          write: true,
          create: true,
          truncate: true,
          mode: 0o600,
        });
      }),
      created: Date.now(),
    };
    this.#entries.set(id, entry);
    let closing: Promise<void> | undefined;
    const pending: Uint8Array[] = [];
    const fail = (err: unknown) => {
      this.#onError(`output ${id}: write failed`, err);
    };
    entry.chain = entry.chain.catch(fail);
    return {
      id,
      append: (bytes) => {
        if (closing || !bytes.length) return;
        entry.info.total_bytes += bytes.length;
        const room = this.maxPerOutput - entry.info.stored_bytes;
        if (room <= 0 || !this.#entries.has(id)) return;
        const part = bytes.slice(0, room);
        entry.info.stored_bytes += part.length;
        this.#stored += part.length;
        // Chunks that arrive while a write is under way go out together in the next one (a
        // log line each would otherwise cost one write each).
        pending.push(part);
        if (pending.length === 1) {
          entry.chain = entry.chain.then(async () => {
            const data = concatBytes(pending.splice(0));
            let off = 0;
            while (entry.file && off < data.length) {
              off += await entry.file.write(data.subarray(off));
            }
          }).catch(fail);
        }
        if (this.#stored > this.maxTotal) this.#evict();
      },
      close: () => {
        if (!closing) {
          entry.info.open = false; // no more appends: it may be evicted from now on
          closing = entry.chain.then(() => {
            entry.file?.close();
            entry.file = undefined;
          }).catch(fail);
          if (this.#stored > this.maxTotal) this.#evict();
        }
        return closing;
      },
    };
  }

  /**
   * Stores a whole text at once; returns its id (usable at once: reads wait for the write).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { OutputStore } from "./store.ts";
   *
   * const store = new OutputStore(await Deno.makeTempDir());
   * const id = store.put("line 1\nline 2\n", "ssh_file_read /etc/hosts");
   * assert.equal(new TextDecoder().decode(await store.read(id, 7, 6)), "line 2");
   * await store.close();
   * ```
   */
  put(text: string | Uint8Array, label: string): string {
    const w = this.create(label);
    w.append(typeof text === "string" ? new TextEncoder().encode(text) : text);
    w.close();
    return w.id;
  }

  /** Facts about an output, or undefined when unknown (never stored, evicted, forgotten). */
  info(id: string): OutputInfo | undefined {
    const e = this.#entries.get(id);
    return e ? { ...e.info } : undefined;
  }

  /** Every output, oldest first. */
  list(): OutputInfo[] {
    return [...this.#entries.values()].map((e) => ({ ...e.info }));
  }

  /** Totals for `status`. */
  stats(): {
    outputs: number;
    bytes: number;
    max_bytes: number;
    max_output_bytes: number;
    evicted: number;
    dir: string;
  } {
    return {
      outputs: this.#entries.size,
      bytes: this.#stored,
      max_bytes: this.maxTotal,
      max_output_bytes: this.maxPerOutput,
      evicted: this.#evicted,
      dir: this.dir,
    };
  }

  /**
   * Reads `length` bytes at `offset` (fewer at the end). Waits for queued writes first.
   * Throws a clear error for an unknown id.
   */
  async read(id: string, offset: number, length: number): Promise<Uint8Array> {
    const e = this.#get(id);
    await e.chain;
    const end = Math.min(e.info.stored_bytes, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const f = await Deno.open(join(this.dir, id), { read: true });
    try {
      await f.seek(offset, Deno.SeekMode.Start);
      const out = new Uint8Array(end - offset);
      let got = 0;
      while (got < out.length) {
        const n = await f.read(out.subarray(got));
        if (n === null) break;
        got += n;
      }
      return out.subarray(0, got);
    } finally {
      f.close();
    }
  }

  /**
   * The lines matching `pattern`, with `context` lines before and after each (1-based line
   * numbers, byte offsets), at most `maxLines` lines in all. `scanned_bytes` says how far the
   * search got when it stopped at `maxLines`.
   */
  async grep(
    id: string,
    pattern: RegExp,
    options: { context?: number | undefined; maxLines?: number | undefined } = {},
  ): Promise<{ lines: GrepLine[]; matches: number; more: boolean; scanned_bytes: number }> {
    const e = this.#get(id);
    await e.chain;
    const context = options.context ?? 0;
    const maxLines = options.maxLines ?? 200;
    const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ""));
    const dec = new TextDecoder();
    const lines: GrepLine[] = [];
    const before: GrepLine[] = [];
    let after = 0;
    let lastEmitted = 0;
    let matches = 0;
    let more = false;
    let lineNo = 0;
    let offset = 0;
    let scanned = 0;
    const emit = (l: GrepLine) => {
      if (l.line <= lastEmitted) return;
      lines.push(l);
      lastEmitted = l.line;
    };
    const onLine = (bytes: Uint8Array): boolean => {
      lineNo++;
      const text = dec.decode(bytes).replace(/\r$/, "");
      const l: GrepLine = { line: lineNo, offset, text, match: false };
      offset += bytes.length + 1;
      if (re.test(text)) {
        if (lines.length >= maxLines) {
          more = true;
          return false;
        }
        matches++;
        for (const b of before) emit(b);
        before.length = 0;
        emit({ ...l, match: true });
        after = context;
      } else if (after > 0) {
        if (lines.length >= maxLines) {
          more = true;
          return false;
        }
        emit(l);
        after--;
      } else if (context > 0) {
        before.push(l);
        if (before.length > context) before.shift();
      }
      scanned = offset;
      return true;
    };
    const f = await Deno.open(join(this.dir, id), { read: true });
    try {
      let rest: Uint8Array = new Uint8Array(0);
      let left = e.info.stored_bytes;
      const buf = new Uint8Array(1 << 20);
      scan: while (left > 0) {
        const n = await f.read(buf.subarray(0, Math.min(buf.length, left)));
        if (n === null) break;
        left -= n;
        const chunk = rest.length ? concatBytes([rest, buf.subarray(0, n)]) : buf.subarray(0, n);
        let start = 0;
        for (let i = 0; i < chunk.length; i++) {
          if (chunk[i] !== 0x0a) continue;
          if (!onLine(chunk.subarray(start, i))) break scan;
          start = i + 1;
        }
        rest = chunk.slice(start);
      }
      if (!more && rest.length) onLine(rest);
    } finally {
      f.close();
    }
    return { lines, matches, more, scanned_bytes: more ? scanned : e.info.stored_bytes };
  }

  /** Deletes an output now. */
  async forget(id: string): Promise<void> {
    const e = this.#entries.get(id);
    if (!e) return;
    this.#entries.delete(id);
    this.#stored -= e.info.stored_bytes;
    await e.chain;
    e.file?.close();
    e.file = undefined;
    await Deno.remove(join(this.dir, id)).catch(() => {});
  }

  /** Waits for pending writes and closes open files. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#removing);
    for (const e of this.#entries.values()) {
      await e.chain;
      e.file?.close();
      e.file = undefined;
      e.info.open = false;
    }
  }

  #get(id: string): Entry {
    const e = this.#entries.get(id);
    if (!e) {
      throw new Error(
        `Cannot read output ${id}: no such output (outputs are kept up to ` +
          `${Math.round(this.maxTotal / 2 ** 20)} MiB in all, oldest evicted first, and are ` +
          `lost when the daemon's config dir is cleared); run the command again`,
      );
    }
    return e;
  }

  #newId(): string {
    for (;;) {
      const bytes = crypto.getRandomValues(new Uint8Array(8));
      const id = "o-" + [...bytes].map((b) => ID_CHARS[b & 31]).join("");
      if (!this.#entries.has(id)) return id;
    }
  }

  /** Evicts the oldest finished outputs until the total fits. */
  #evict(): void {
    for (const [id, e] of this.#entries) {
      if (this.#stored <= this.maxTotal) return;
      if (e.info.open) continue;
      this.#evicted++;
      const p = this.forget(id).catch(() => {}).finally(() => this.#removing.delete(p));
      this.#removing.add(p);
    }
  }
}
