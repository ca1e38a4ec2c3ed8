/**
 * A byte collector that keeps the head and the tail of a stream (bounded memory however much
 * arrives) and renders them with the `[… N bytes omitted …]` marker of SPEC §4.10.
 */

/** Collects a stream, keeping at most `keep` head bytes and `keep` tail bytes. */
export class HeadTail {
  #keep: number;
  #head: Uint8Array[] = [];
  #headLen = 0;
  #tail: Uint8Array[] = [];
  #tailLen = 0;
  /** Bytes received in total. */
  total = 0;

  constructor(keep: number) {
    this.#keep = Math.max(1024, keep);
  }

  /** Appends a chunk. */
  push(chunk: Uint8Array): void {
    this.total += chunk.length;
    if (this.#headLen < this.#keep) {
      const take = Math.min(chunk.length, this.#keep - this.#headLen);
      this.#head.push(chunk.subarray(0, take));
      this.#headLen += take;
      chunk = chunk.subarray(take);
      if (!chunk.length) return;
    }
    this.#tail.push(chunk);
    this.#tailLen += chunk.length;
    while (this.#tail.length > 1 && this.#tailLen - this.#tail[0].length >= this.#keep) {
      this.#tailLen -= this.#tail.shift()!.length;
    }
  }

  /**
   * The text within `max` bytes: everything if it fits, else head + marker + tail.
   * UTF-8 characters are never split.
   */
  render(max: number): { text: string; truncated: boolean } {
    const head = concat(this.#head, this.#headLen);
    const tail = concat(this.#tail, this.#tailLen);
    const dec = new TextDecoder();
    if (this.total <= max && this.total === head.length + tail.length) {
      return {
        text: dec.decode(concat([head, tail], head.length + tail.length)),
        truncated: false,
      };
    }
    const half = Math.max(0, Math.floor((max - 40) / 2));
    let h = head.subarray(0, Math.min(half, head.length));
    let end = h.length;
    while (end > 0 && end < head.length && (head[end] & 0xc0) === 0x80) end--;
    h = head.subarray(0, end);
    const tailSrc = tail.length ? tail : head.subarray(h.length);
    let start = Math.max(0, tailSrc.length - half);
    while (start < tailSrc.length && (tailSrc[start] & 0xc0) === 0x80) start++;
    const t = tailSrc.subarray(start);
    const omitted = this.total - h.length - t.length;
    if (omitted <= 0) return { text: dec.decode(head) + dec.decode(tail), truncated: false };
    return {
      text: `${dec.decode(h)}\n[… ${omitted} bytes omitted …]\n${dec.decode(t)}`,
      truncated: true,
    };
  }
}

function concat(parts: Uint8Array[], len: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Splits a budget of `max` bytes between stdout and stderr: each keeps what it needs when both
 * fit; otherwise stderr keeps at least a quarter (or all it needs, if less).
 */
export function splitBudget(
  stdoutBytes: number,
  stderrBytes: number,
  max: number,
): [number, number] {
  if (stdoutBytes + stderrBytes <= max) return [max, max];
  const err = Math.min(stderrBytes, Math.max(Math.floor(max / 4), max - stdoutBytes));
  return [max - err, err];
}
