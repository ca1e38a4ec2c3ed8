/**
 * Poly1305 (RFC 8439) for the portable chacha20-poly1305 path: the WebAssembly build of
 * poly1305-donna that ssh2 ships (`lib/protocol/crypto/poly1305.js`), driven directly through
 * its exported `poly1305_auth(out, m1, m1len, m2, m2len, key)` with one buffer this instance
 * owns — ssh2's own wrapper copies every packet onto the WebAssembly stack and keeps its
 * result in a module-wide buffer.
 */
// @ts-types="./poly1305_wasm.d.ts"
import createPoly1305 from "ssh2/lib/protocol/crypto/poly1305.js";
import { MAX_PACKET_SIZE, TAG_LEN } from "./packet.ts";

interface WasmModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(ptr: number): void;
  _poly1305_auth(
    out: number,
    m1: number,
    m1len: number,
    m2: number,
    m2len: number,
    key: number,
  ): void;
}

/** One Poly1305 engine (one WebAssembly instance and its buffers). */
export class Poly1305 {
  #wasm: WasmModule;
  #out: number;
  #key: number;
  #m1: number;
  #m2: number;

  private constructor(wasm: WasmModule) {
    this.#wasm = wasm;
    const base = wasm._malloc(TAG_LEN + 32 + 16 + MAX_PACKET_SIZE + TAG_LEN);
    this.#out = base;
    this.#key = base + TAG_LEN;
    this.#m1 = this.#key + 32;
    this.#m2 = this.#m1 + 16;
  }

  /** Instantiates the WebAssembly module. */
  static async create(): Promise<Poly1305> {
    return new Poly1305(await (createPoly1305 as () => Promise<WasmModule>)());
  }

  /** `tag = Poly1305(key[0..32], a || b)`; `a` at most 16 bytes, `b` at most a packet. */
  auth(key: Uint8Array, a: Uint8Array, b: Uint8Array, tag: Uint8Array): void {
    const w = this.#wasm;
    const heap = w.HEAPU8;
    heap.set(key.subarray(0, 32), this.#key);
    heap.set(a, this.#m1);
    heap.set(b, this.#m2);
    w._poly1305_auth(this.#out, this.#m1, a.length, this.#m2, b.length, this.#key);
    tag.set(w.HEAPU8.subarray(this.#out, this.#out + TAG_LEN));
  }
}
