import { concatBytes } from "../output/mod.ts";

/**
 * Docker's stream framing for non-TTY attach/exec/logs streams: each frame is an 8-byte header
 * (byte 0: 1 = stdout, 2 = stderr; bytes 4–7: big-endian length) followed by that many bytes.
 * One splitter serves exec, run and logs; frames split across chunks are reassembled.
 *
 * @example
 * ```ts
 * import { FrameSplitter } from "./frames.ts";
 *
 * const got: string[] = [];
 * const frames = new FrameSplitter((stream, body) =>
 *   got.push(`${stream}:${new TextDecoder().decode(body)}`)
 * );
 * const frame = new Uint8Array([2, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x62, 0x63]); // stderr "abc"
 * frames.push(frame.subarray(0, 5)); // split across chunks: reassembled
 * frames.push(frame.subarray(5));
 * console.assert(got.join() === "2:abc");
 * ```
 */
export class FrameSplitter {
  #buf: Uint8Array = new Uint8Array(0);
  #onFrame: (stream: 1 | 2, body: Uint8Array) => void;

  constructor(onFrame: (stream: 1 | 2, body: Uint8Array) => void) {
    this.#onFrame = onFrame;
  }

  /** Feeds bytes; every complete frame is handed on. */
  push(chunk: Uint8Array): void {
    const b = this.#buf.length ? concatBytes([this.#buf, chunk]) : chunk;
    let off = 0;
    while (b.length - off >= 8) {
      const size = new DataView(b.buffer, b.byteOffset + off + 4, 4).getUint32(0);
      if (b.length - off - 8 < size) break;
      this.#onFrame(b[off] === 2 ? 2 : 1, b.subarray(off + 8, off + 8 + size));
      off += 8 + size;
    }
    this.#buf = b.slice(off);
  }

  /** Bytes of an incomplete frame still held. */
  get pending(): Uint8Array {
    return this.#buf;
  }
}
