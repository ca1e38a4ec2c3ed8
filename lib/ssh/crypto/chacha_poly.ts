/**
 * chacha20-poly1305@openssh.com (OpenSSH's PROTOCOL.chacha20poly1305): a 64-byte key split into
 * K_main (bytes 0..32) and K_header (32..64); the nonce is the packet sequence number as a
 * 64-bit big-endian number. K_header encrypts the 4 length bytes; K_main's block 0 gives the
 * Poly1305 key, blocks 1… encrypt the rest of the packet; the tag covers length and body.
 *
 * Two engines with one behaviour: {@link FfiChaChaPoly} (OpenSSL's ChaCha20 and Poly1305 through
 * libcrypto) and {@link PortableChaChaPoly} (Deno's native `node:crypto` ChaCha20 and a
 * WebAssembly Poly1305 — the one ssh2 ships, called with its own memory, no copies on the
 * WebAssembly stack). Both keep every buffer per instance (see packet.ts for why).
 */
import { createCipheriv } from "node:crypto";
import type { LibcryptoSymbols } from "./libcrypto.ts";
import { MAX_PACKET_SIZE, type Opener, type Sealer, TAG_LEN } from "./packet.ts";
import type { Poly1305 } from "./poly1305.ts";

const ZEROS = new Uint8Array(64);

function checkLength(len: number): number {
  if (len > MAX_PACKET_SIZE || len < 8 || (len & 7) !== 0) {
    throw new Error(`Bad packet length: ${len}`);
  }
  return len;
}

/** Constant-time comparison of two 16-byte tags. */
export function tagsEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = 0;
  for (let i = 0; i < TAG_LEN; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** The engine-specific primitives both directions need. */
export interface ChaChaEngine {
  /** ChaCha20 under K_header at block 0: `out = in ^ keystream` (4 bytes). */
  header(input: Uint8Array, out: Uint8Array, seqno: number): void;
  /** Poly1305 key into `polyKey`, then `out = body ^ keystream` from block 1 (in place allowed). */
  main(
    body: Uint8Array,
    out: Uint8Array,
    seqno: number,
    polyKey: Uint8Array,
    pre?: () => void,
  ): void;
  /** Poly1305 of `a || b` under `key` into `tag`. */
  mac(key: Uint8Array, a: Uint8Array, b: Uint8Array, tag: Uint8Array): void;
  free(): void;
}

class ChaChaPolySealer implements Sealer {
  readonly blockLen = 8;
  readonly tagLen = TAG_LEN;
  readonly aadLen = 4;
  #engine: ChaChaEngine;
  #polyKey = new Uint8Array(64);

  constructor(engine: ChaChaEngine) {
    this.#engine = engine;
  }

  seal(packet: Uint8Array, pktLen: number, seqno: number): void {
    const head = packet.subarray(0, 4);
    const body = packet.subarray(4, pktLen);
    this.#engine.header(head, head, seqno);
    this.#engine.main(body, body, seqno, this.#polyKey);
    this.#engine.mac(this.#polyKey, head, body, packet.subarray(pktLen, pktLen + TAG_LEN));
  }

  free(): void {
    this.#engine.free();
  }
}

class ChaChaPolyOpener implements Opener {
  readonly headLen = 4;
  readonly tagLen = TAG_LEN;
  #engine: ChaChaEngine;
  #polyKey = new Uint8Array(64);
  #len = new Uint8Array(4);
  #tag = new Uint8Array(TAG_LEN);

  constructor(engine: ChaChaEngine) {
    this.#engine = engine;
  }

  lengthOf(head: Uint8Array, seqno: number): number {
    this.#engine.header(head, this.#len, seqno);
    const l = this.#len;
    return checkLength(((l[0]! << 24) | (l[1]! << 16) | (l[2]! << 8) | l[3]!) >>> 0);
  }

  open(head: Uint8Array, body: Uint8Array, len: number, seqno: number, out: Uint8Array): void {
    const cipherText = body.subarray(0, len);
    // Verify before decrypting (`out` may be `body` itself): the tag covers the ciphertext.
    this.#engine.main(cipherText, out, seqno, this.#polyKey, () => {
      this.#engine.mac(this.#polyKey, head, cipherText, this.#tag);
      if (!tagsEqual(this.#tag, body.subarray(len))) throw new Error("Invalid MAC");
    });
  }

  free(): void {
    this.#engine.free();
  }
}

/** ChaCha20 and Poly1305 from libcrypto. */
export class FfiChaChaPoly implements ChaChaEngine {
  #lib: LibcryptoSymbols;
  #main: Deno.PointerValue;
  #header: Deno.PointerValue;
  #mac: Deno.PointerValue;
  #iv = new Uint8Array(16);
  #ivView = new DataView(this.#iv.buffer);
  #outl = new Uint8Array(8);

  constructor(lib: LibcryptoSymbols, poly1305: Deno.PointerValue, key: Uint8Array) {
    this.#lib = lib;
    const cipher = lib.EVP_chacha20();
    this.#main = lib.EVP_CIPHER_CTX_new();
    this.#header = lib.EVP_CIPHER_CTX_new();
    this.#mac = lib.EVP_MAC_CTX_new(poly1305);
    if (
      this.#main === null || this.#header === null || this.#mac === null ||
      lib.EVP_CipherInit_ex(this.#main, cipher, null, key.subarray(0, 32), this.#iv, 1) !== 1 ||
      lib.EVP_CipherInit_ex(this.#header, cipher, null, key.subarray(32, 64), this.#iv, 1) !== 1
    ) {
      this.free();
      throw new Error("Cannot set up chacha20-poly1305: libcrypto refused the key");
    }
  }

  #nonce(seqno: number): Uint8Array {
    this.#ivView.setUint32(12, seqno);
    return this.#iv;
  }

  header(input: Uint8Array, out: Uint8Array, seqno: number): void {
    const lib = this.#lib;
    if (
      lib.EVP_CipherInit_ex(this.#header, null, null, null, this.#nonce(seqno), -1) !== 1 ||
      lib.EVP_CipherUpdate(this.#header, out, this.#outl, input, 4) !== 1
    ) throw new Error("libcrypto ChaCha20 failed");
  }

  main(
    body: Uint8Array,
    out: Uint8Array,
    seqno: number,
    polyKey: Uint8Array,
    pre?: () => void,
  ): void {
    const lib = this.#lib;
    if (
      lib.EVP_CipherInit_ex(this.#main, null, null, null, this.#nonce(seqno), -1) !== 1 ||
      lib.EVP_CipherUpdate(this.#main, polyKey, this.#outl, ZEROS, 64) !== 1
    ) throw new Error("libcrypto ChaCha20 failed");
    pre?.();
    if (lib.EVP_CipherUpdate(this.#main, out, this.#outl, body, body.length) !== 1) {
      throw new Error("libcrypto ChaCha20 failed");
    }
  }

  mac(key: Uint8Array, a: Uint8Array, b: Uint8Array, tag: Uint8Array): void {
    const lib = this.#lib;
    if (
      lib.EVP_MAC_init(this.#mac, key, 32n, null) !== 1 ||
      lib.EVP_MAC_update(this.#mac, a, BigInt(a.length)) !== 1 ||
      lib.EVP_MAC_update(this.#mac, b, BigInt(b.length)) !== 1 ||
      lib.EVP_MAC_final(this.#mac, tag, this.#outl, 16n) !== 1
    ) throw new Error("libcrypto Poly1305 failed");
  }

  free(): void {
    const lib = this.#lib;
    if (this.#main !== null) lib.EVP_CIPHER_CTX_free(this.#main);
    if (this.#header !== null) lib.EVP_CIPHER_CTX_free(this.#header);
    if (this.#mac !== null) lib.EVP_MAC_CTX_free(this.#mac);
    this.#main = this.#header = this.#mac = null;
  }
}

/** Deno's native ChaCha20 (`node:crypto`) and a WebAssembly Poly1305. */
export class PortableChaChaPoly implements ChaChaEngine {
  #keyMain: Uint8Array;
  #keyHeader: Uint8Array;
  #poly: Poly1305;
  #iv = new Uint8Array(16);
  #ivView = new DataView(this.#iv.buffer);

  constructor(poly: Poly1305, key: Uint8Array) {
    this.#keyMain = key.slice(0, 32);
    this.#keyHeader = key.slice(32, 64);
    this.#poly = poly;
  }

  #nonce(seqno: number): Uint8Array {
    this.#ivView.setUint32(12, seqno);
    return this.#iv;
  }

  header(input: Uint8Array, out: Uint8Array, seqno: number): void {
    const c = createCipheriv("chacha20", this.#keyHeader, this.#nonce(seqno));
    out.set(c.update(input));
    c.final(); // releases Deno's native cipher resource now rather than at garbage collection
  }

  main(
    body: Uint8Array,
    out: Uint8Array,
    seqno: number,
    polyKey: Uint8Array,
    pre?: () => void,
  ): void {
    const c = createCipheriv("chacha20", this.#keyMain, this.#nonce(seqno));
    polyKey.set(c.update(ZEROS));
    try {
      pre?.();
      out.set(c.update(body));
    } finally {
      c.final();
    }
  }

  mac(key: Uint8Array, a: Uint8Array, b: Uint8Array, tag: Uint8Array): void {
    this.#poly.auth(key, a, b, tag);
  }

  free(): void {}
}

/** A chacha20-poly1305@openssh.com sealer over `engine`. */
export function chachaSealer(engine: ChaChaEngine): Sealer {
  return new ChaChaPolySealer(engine);
}

/** A chacha20-poly1305@openssh.com opener over `engine`. */
export function chachaOpener(engine: ChaChaEngine): Opener {
  return new ChaChaPolyOpener(engine);
}
