import { completeLength, fitHead, JSON_COST } from "../output/mod.ts";

/** Default capacity of a shell's output ring: 1 MiB (README "Shells"). */
export const RING_CAPACITY = 1 << 20;

/**
 * A bounded FIFO of output bytes. When more than `capacity` bytes are unread, the oldest are
 * dropped and counted. `take()` never returns a partial UTF-8 character: an incomplete
 * sequence at the end stays buffered until the rest arrives (or `final` is set).
 *
 * @example
 * ```ts
 * const ring = new ByteRing(8);
 * ring.push(new TextEncoder().encode("0123456789"));
 * ring.take(); // { text: "23456789", dropped: 2 }
 * ```
 */
export class ByteRing {
  readonly capacity: number;
  #chunks: Uint8Array[] = [];
  #size = 0;
  #droppedSinceTake = 0;
  /** Bytes ever dropped. */
  droppedTotal = 0;
  /** Bytes ever pushed. */
  pushedTotal = 0;

  constructor(capacity = RING_CAPACITY) {
    this.capacity = capacity;
  }

  /** Unread bytes. */
  get size(): number {
    return this.#size;
  }

  /** Bytes dropped since the last `take()`. */
  get droppedSinceTake(): number {
    return this.#droppedSinceTake;
  }

  /** Appends bytes, dropping the oldest beyond capacity (never leaving half a character). */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.pushedTotal += bytes.length;
    if (bytes.length >= this.capacity) {
      this.#drop(this.#size);
      const cut = bytes.length - this.capacity;
      this.#dropped(cut);
      bytes = bytes.slice(cut);
    } else {
      bytes = bytes.slice(); // the caller may reuse its buffer
    }
    this.#chunks.push(bytes);
    this.#size += bytes.length;
    if (this.#size > this.capacity) this.#drop(this.#size - this.capacity);
    // never start on a UTF-8 continuation byte
    let skip = 0;
    while (skip < 3 && skip < this.#size && (this.#byteAt(skip) & 0xc0) === 0x80) skip++;
    if (skip) this.#drop(skip);
  }

  /** Puts bytes back in front (used to return data that a `run` did not consume). */
  unshift(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#chunks.unshift(bytes.slice());
    this.#size += bytes.length;
    if (this.#size > this.capacity) this.#drop(this.#size - this.capacity);
  }

  /** The unread bytes as one array, without consuming them. */
  peekBytes(): Uint8Array {
    const only = this.#chunks.length === 1 ? this.#chunks[0] : undefined;
    if (only) return only;
    const out = new Uint8Array(this.#size);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    this.#chunks = this.#size ? [out] : [];
    return out;
  }

  /** Length of the unread bytes that form whole UTF-8 characters (all of them if `final`). */
  completeLength(final = false): number {
    const all = this.peekBytes();
    return final ? all.length : completeLength(all);
  }

  /** The readable text now (whole characters only), without consuming it. */
  peekText(final = false): string {
    const all = this.peekBytes();
    return new TextDecoder().decode(all.subarray(0, final ? all.length : completeLength(all)));
  }

  /**
   * Consumes and decodes the unread bytes (whole characters only unless `final`; at most
   * `maxBytes` once JSON-escaped, cut on a character boundary), and
   * returns how many bytes were dropped since the previous take.
   */
  take(final = false, maxBytes = Infinity): { text: string; bytes: number; dropped: number } {
    const all = this.peekBytes();
    let n = final ? all.length : completeLength(all);
    // the budget is for the text as it will be sent: JSON escapes cost more than one byte
    if (maxBytes < Infinity) n = fitHead(all.subarray(0, n), maxBytes, JSON_COST);
    const text = new TextDecoder().decode(all.subarray(0, n));
    const rest = all.subarray(n);
    this.#chunks = rest.length ? [rest.slice()] : [];
    this.#size = rest.length;
    const dropped = this.#droppedSinceTake;
    this.#droppedSinceTake = 0;
    return { text, bytes: n, dropped };
  }

  /** Forgets everything unread (not counted as dropped). */
  clear(): void {
    this.#chunks = [];
    this.#size = 0;
  }

  #byteAt(i: number): number {
    for (const c of this.#chunks) {
      if (i < c.length) return c[i] ?? 0;
      i -= c.length;
    }
    return 0;
  }

  #dropped(n: number): void {
    this.#droppedSinceTake += n;
    this.droppedTotal += n;
  }

  #drop(n: number): void {
    this.#dropped(n);
    this.#size -= n;
    for (let c = this.#chunks[0]; n > 0 && c; c = this.#chunks[0]) {
      if (c.length <= n) {
        this.#chunks.shift();
        n -= c.length;
      } else {
        this.#chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }
}
