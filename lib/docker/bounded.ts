/** A byte sink that keeps the head and the tail of a stream, counting what it dropped between. */
export class HeadTail {
  #head: Uint8Array[] = [];
  #headLen = 0;
  #tail: Uint8Array[] = [];
  #tailLen = 0;
  /** Bytes dropped between head and tail. */
  omitted = 0;
  /** Total bytes seen. */
  total = 0;

  /** Keeps up to `max` bytes at each end. */
  constructor(readonly max: number) {}

  /** Adds bytes. */
  push(chunk: Uint8Array): void {
    this.total += chunk.length;
    if (this.#headLen < this.max) {
      const take = Math.min(chunk.length, this.max - this.#headLen);
      this.#head.push(chunk.slice(0, take));
      this.#headLen += take;
      chunk = chunk.subarray(take);
      if (!chunk.length) return;
    }
    this.#tail.push(chunk.slice());
    this.#tailLen += chunk.length;
    while (this.#tailLen - this.#tail[0].length >= this.max) {
      const gone = this.#tail.shift()!;
      this.#tailLen -= gone.length;
      this.omitted += gone.length;
    }
  }

  /** Whether anything was dropped. */
  get truncated(): boolean {
    return this.omitted > 0 || this.#tailLen > this.max;
  }

  /** The text: head, a `[… N bytes omitted …]` marker when something was dropped, tail. */
  text(): string {
    const dec = new TextDecoder();
    const join = (parts: Uint8Array[], len: number) => {
      const out = new Uint8Array(len);
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    };
    const head = join(this.#head, this.#headLen);
    let tail = join(this.#tail, this.#tailLen);
    let omitted = this.omitted;
    if (tail.length > this.max) {
      omitted += tail.length - this.max;
      tail = tail.subarray(tail.length - this.max);
    }
    if (omitted === 0) return dec.decode(join([head, tail], head.length + tail.length));
    // move cut points to UTF-8 boundaries
    let h = head.length;
    while (h > 0 && (head[h - 1] & 0xc0) === 0x80) h--;
    if (h > 0 && head[h - 1] >= 0xc0) h--;
    let t = 0;
    while (t < tail.length && (tail[t] & 0xc0) === 0x80) t++;
    omitted += head.length - h + t;
    return `${dec.decode(head.subarray(0, h))}\n[… ${omitted} bytes omitted …]\n${
      dec.decode(tail.subarray(t))
    }`;
  }
}
