/**
 * The one bounded-output collector: SSH exec, Docker exec/run/logs and shell runs feed their
 * streams into a {@link Capture}. It keeps the head and the tail in memory (bounded however
 * much arrives) and, once the stream outgrows what any result can show, writes the whole
 * stream to the output store so nothing that a result leaves out is lost.
 */
import { concatBytes, RAW_COST } from "./bytes.ts";
import { type CapturedStream, cutText, MARKER_ROOM, prepare } from "./cut.ts";
import type { OutputStore, OutputWriter } from "./store.ts";

const DECODER = new TextDecoder();

/** Options for {@link Capture}. */
export interface CaptureOptions {
  /** Bytes kept in memory at each end (default 64 KiB); a result never shows more. */
  keep?: number | undefined;
  /** Where the full stream goes once it outgrows `keep` (none: the middle is only counted). */
  store?: OutputStore | undefined;
  /** Label of the stored output, e.g. `ssh_exec web1 stdout`. */
  label?: string | undefined;
}

/**
 * Collects one byte stream with bounded memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Capture } from "./capture.ts";
 * const c = new Capture({ keep: 4 });
 * c.push(new TextEncoder().encode("abcdefghij"));
 * assert.equal(c.total, 10);
 * c.whole; // undefined: the middle was not kept (no store)
 * ```
 */
export class Capture implements CapturedStream {
  readonly keep: number;
  readonly #store: OutputStore | undefined;
  readonly #label: string;
  #head: Uint8Array[] = [];
  #headLen = 0;
  /** Tail chunks from `#tailFrom` on (dropping from the front moves the index, not the array). */
  #tail: Uint8Array[] = [];
  #tailFrom = 0;
  #tailLen = 0;
  #writer: OutputWriter | undefined;
  #stored: string | undefined;
  #last = "";
  /** Bytes received in total. */
  total = 0;

  constructor(options: CaptureOptions = {}) {
    this.keep = Math.max(1024, options.keep ?? 64 * 1024);
    this.#store = options.store;
    this.#label = options.label ?? "output";
  }

  /** Appends a chunk (copied when kept). */
  push(chunk: Uint8Array): void {
    if (!chunk.length) return;
    this.total += chunk.length;
    this.#noteLastLine(chunk);
    if (this.#writer) this.#writer.append(chunk);
    if (this.#headLen < this.keep) {
      const take = Math.min(chunk.length, this.keep - this.#headLen);
      this.#head.push(chunk.slice(0, take));
      this.#headLen += take;
      chunk = chunk.subarray(take);
      if (!chunk.length) return;
    }
    if (!this.#writer && this.#store) {
      // The stream no longer fits in memory whole: from now on it all goes to the store.
      this.#writer = this.#store.create(this.#label);
      for (const part of this.#head) this.#writer.append(part);
      for (const part of this.#tailParts()) this.#writer.append(part);
      this.#writer.append(chunk);
    }
    // Many small chunks (a log line each) must not cost a shift of the whole array each.
    const tail = this.#tail;
    tail.push(chunk.slice());
    this.#tailLen += chunk.length;
    while (
      tail.length - this.#tailFrom > 1 && this.#tailLen - tail[this.#tailFrom]!.length >= this.keep
    ) {
      this.#tailLen -= tail[this.#tailFrom++]!.length;
    }
    if (this.#tailFrom > 1024 && this.#tailFrom * 2 > tail.length) {
      this.#tail = tail.slice(this.#tailFrom);
      this.#tailFrom = 0;
    }
  }

  #tailParts(): Uint8Array[] {
    return this.#tailFrom ? this.#tail.slice(this.#tailFrom) : this.#tail;
  }

  /** The first bytes kept (up to `keep`). */
  head(): Uint8Array {
    return concatBytes(this.#head, this.#headLen);
  }

  /** The last bytes kept after the head (up to about `keep`; none if the head holds all). */
  tail(): Uint8Array {
    return concatBytes(this.#tailParts(), this.#tailLen);
  }

  /** Every byte, when the stream was small enough to be kept whole in memory. */
  get whole(): Uint8Array | undefined {
    if (this.total !== this.#headLen + this.#tailLen) return undefined;
    return this.#tailLen ? concatBytes([this.head(), this.tail()]) : this.head();
  }

  /** The whole stream decoded, or head + tail when the middle is gone (for error texts). */
  text(): string {
    return new TextDecoder().decode(this.whole ?? concatBytes([this.head(), this.tail()]));
  }

  /** The id of the stored full stream, storing the in-memory bytes now if needed. */
  storedId(): string | undefined {
    if (this.#writer) return this.#writer.id;
    if (this.#stored || !this.#store) return this.#stored;
    const whole = this.whole;
    if (!whole) return undefined;
    this.#stored = this.#store.put(whole, this.#label);
    return this.#stored;
  }

  /**
   * The text within `max` bytes (head, marker, tail when longer), for callers that lay out a
   * stream themselves (grouped fleet results, error texts). Cut by the same rule as results;
   * the marker names the stored copy when there is one.
   */
  render(max: number): { text: string; truncated: boolean; omitted: number } {
    const c = cutText(prepare(this), max - MARKER_ROOM, "both", RAW_COST, () => this.storedId());
    return { text: c.text, truncated: c.omitted > 0, omitted: c.omitted };
  }

  /** The last non-empty line seen (for progress messages), at most 200 characters. */
  get lastLine(): string {
    return this.#last;
  }

  /** Finishes writing the stored copy (if any). Idempotent. */
  async end(): Promise<void> {
    await this.#writer?.close();
  }

  #noteLastLine(chunk: Uint8Array): void {
    const piece = DECODER.decode(chunk.subarray(Math.max(0, chunk.length - 400)));
    const lines = piece.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    if (lines.length) this.#last = lines[lines.length - 1]!.slice(-200);
  }
}
