/**
 * aes128-gcm@openssh.com and aes256-gcm@openssh.com (RFC 5647) on OpenSSL's libcrypto: the
 * 4-byte length is additional authenticated data, the rest of the packet is encrypted, the
 * 16-byte tag follows; the 12-byte nonce is a 4-byte fixed field and a 64-bit big-endian
 * invocation counter incremented per packet.
 */
import { EVP_CTRL_GCM_GET_TAG, EVP_CTRL_GCM_SET_TAG, type LibcryptoSymbols } from "./libcrypto.ts";
import { MAX_PACKET_SIZE, type Opener, type Sealer, TAG_LEN } from "./packet.ts";

function newContext(
  lib: LibcryptoSymbols,
  key: Uint8Array,
  iv: Uint8Array,
  encrypt: boolean,
): Deno.PointerValue {
  const cipher = key.length === 32 ? lib.EVP_aes_256_gcm() : lib.EVP_aes_128_gcm();
  const ctx = lib.EVP_CIPHER_CTX_new();
  if (ctx === null) throw new Error("Cannot create an AES-GCM context: out of memory");
  if (lib.EVP_CipherInit_ex(ctx, cipher, null, key, iv, encrypt ? 1 : 0) !== 1) {
    lib.EVP_CIPHER_CTX_free(ctx);
    throw new Error("Cannot set up AES-GCM: libcrypto refused the key");
  }
  return ctx;
}

/** Increments the 64-bit big-endian invocation counter (bytes 4..11) of a GCM nonce. */
export function ivIncrement(iv: Uint8Array): void {
  for (let i = 11; i >= 4; i--) {
    iv[i] = (iv[i]! + 1) & 0xff;
    if (iv[i] !== 0) return;
  }
}

abstract class GcmBase {
  protected readonly lib: LibcryptoSymbols;
  protected ctx: Deno.PointerValue;
  protected readonly iv: Uint8Array;
  protected readonly outl = new Int32Array(1);
  protected readonly outlBytes = new Uint8Array(this.outl.buffer);
  protected readonly scratch = new Uint8Array(16);

  constructor(lib: LibcryptoSymbols, key: Uint8Array, iv: Uint8Array, encrypt: boolean) {
    this.lib = lib;
    this.iv = new Uint8Array(iv);
    this.ctx = newContext(lib, key, this.iv, encrypt);
  }

  free(): void {
    if (this.ctx === null) return;
    this.lib.EVP_CIPHER_CTX_free(this.ctx);
    this.ctx = null;
  }
}

/** Seals packets with AES-GCM through libcrypto. */
export class FfiGcmSealer extends GcmBase implements Sealer {
  readonly blockLen = 16;
  readonly tagLen = TAG_LEN;
  readonly aadLen = 4;

  constructor(lib: LibcryptoSymbols, key: Uint8Array, iv: Uint8Array) {
    super(lib, key, iv, true);
  }

  seal(packet: Uint8Array, pktLen: number): void {
    const { lib, ctx, outlBytes } = this;
    const body = packet.subarray(4, pktLen);
    if (
      lib.EVP_CipherInit_ex(ctx, null, null, null, this.iv, -1) !== 1 ||
      lib.EVP_CipherUpdate(ctx, null, outlBytes, packet, 4) !== 1 ||
      lib.EVP_CipherUpdate(ctx, body, outlBytes, body, body.length) !== 1 ||
      lib.EVP_CipherFinal_ex(ctx, this.scratch, outlBytes) !== 1 ||
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, packet.subarray(pktLen)) !== 1
    ) throw new Error("Cannot encrypt a packet: libcrypto AES-GCM failed");
    ivIncrement(this.iv);
  }
}

/** Opens AES-GCM packets through libcrypto. */
export class FfiGcmOpener extends GcmBase implements Opener {
  readonly headLen = 4;
  readonly tagLen = TAG_LEN;

  constructor(lib: LibcryptoSymbols, key: Uint8Array, iv: Uint8Array) {
    super(lib, key, iv, false);
  }

  lengthOf(head: Uint8Array): number {
    const len = ((head[0]! << 24) | (head[1]! << 16) | (head[2]! << 8) | head[3]!) >>> 0;
    if (len + 20 > MAX_PACKET_SIZE || len < 16 || (len & 15) !== 0) {
      throw new Error(`Bad packet length: ${len}`);
    }
    return len;
  }

  open(head: Uint8Array, body: Uint8Array, len: number, _seqno: number, out: Uint8Array): void {
    const { lib, ctx, outlBytes } = this;
    // the tag is set before decrypting: `out` may be `body` itself
    if (
      lib.EVP_CipherInit_ex(ctx, null, null, null, this.iv, -1) !== 1 ||
      lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, body.subarray(len)) !== 1 ||
      lib.EVP_CipherUpdate(ctx, null, outlBytes, head, 4) !== 1 ||
      lib.EVP_CipherUpdate(ctx, out, outlBytes, body, len) !== 1
    ) throw new Error("Cannot decrypt a packet: libcrypto AES-GCM failed");
    if (lib.EVP_CipherFinal_ex(ctx, this.scratch, outlBytes) !== 1) {
      throw new Error("Invalid MAC");
    }
    ivIncrement(this.iv);
  }
}
