/**
 * aes128-ctr, aes192-ctr and aes256-ctr (RFC 4344) with an HMAC (RFC 4253 §6.4, RFC 6668) on
 * OpenSSL's libcrypto. The CTR keystream runs on across packets (the counter is the whole
 * 16-byte IV, incremented per block); the MAC is HMAC(key, seqno || packet):
 * - plain (`hmac-sha2-256`, …): over the whole unencrypted packet, length included; the length
 *   is encrypted with the rest, so a reader decrypts the first block to learn it;
 * - encrypt-then-MAC (`…-etm@openssh.com`, OpenSSH's PROTOCOL): the 4 length bytes travel in
 *   the clear, the rest is encrypted, and the MAC covers the length and the ciphertext, so a
 *   reader checks it before decrypting anything.
 *
 * Only full-length MACs (SHA-1, SHA-256, SHA-512) are run here; the others stay on ssh2's own
 * code, as does everything when libcrypto lacks the HMAC functions.
 */
import type { LibcryptoSymbols } from "./libcrypto.ts";
import { type MacInfo, MAX_PACKET_SIZE, type Opener, type Sealer } from "./packet.ts";

/** Full MAC length of each hash run here, by ssh2's name for it. */
const DIGESTS = { sha1: 20, sha256: 32, sha512: 64 } as Record<string, number>;

/** Whether libcrypto here can run `cipher` (ssh2's sslName) with `mac` (ssh2's macInfo). */
export function ctrSupported(
  lib: LibcryptoSymbols,
  cipher: string,
  mac: MacInfo | undefined,
): boolean {
  return /^aes-(128|192|256)-ctr$/.test(cipher) && mac !== undefined &&
    DIGESTS[mac.sslName] === mac.len && mac.actualLen === mac.len &&
    lib.HMAC_CTX_new !== null && lib.HMAC_Init_ex !== null && lib.HMAC_Update !== null &&
    lib.HMAC_Final !== null && lib.HMAC_CTX_free !== null;
}

function cipherOf(lib: LibcryptoSymbols, keyLen: number): Deno.PointerValue {
  if (keyLen === 16) return lib.EVP_aes_128_ctr();
  if (keyLen === 24) return lib.EVP_aes_192_ctr();
  if (keyLen === 32) return lib.EVP_aes_256_ctr();
  throw new Error(`AES-CTR needs a 16, 24 or 32-byte key, not ${keyLen}`);
}

function digestOf(lib: LibcryptoSymbols, name: string): Deno.PointerValue {
  if (name === "sha1") return lib.EVP_sha1();
  if (name === "sha256") return lib.EVP_sha256();
  if (name === "sha512") return lib.EVP_sha512();
  throw new Error(`no HMAC digest ${name}`);
}

/** One direction's keys, as ssh2 derives them. */
export interface CtrKeys {
  key: Uint8Array;
  iv: Uint8Array;
  /** ssh2's `macInfo`, one {@link ctrSupported} accepts (a full-length MAC). */
  mac: MacInfo;
  macKey: Uint8Array;
}

/** One direction's AES-CTR context and HMAC context. */
abstract class CtrBase {
  readonly blockLen = 16;
  readonly tagLen: number;
  protected readonly lib: LibcryptoSymbols;
  protected readonly etm: boolean;
  #cipher: Deno.PointerValue;
  #hmac: Deno.PointerValue;
  readonly #outl = new Uint8Array(4);
  readonly #seq = new Uint8Array(4);
  readonly #seqView = new DataView(this.#seq.buffer);

  constructor(lib: LibcryptoSymbols, { key, iv, mac, macKey }: CtrKeys, encrypt: boolean) {
    this.lib = lib;
    this.etm = mac.isETM;
    this.tagLen = mac.len;
    const cipher = cipherOf(lib, key.length);
    this.#cipher = lib.EVP_CIPHER_CTX_new();
    this.#hmac = lib.HMAC_CTX_new!();
    if (this.#cipher === null || this.#hmac === null) {
      this.free();
      throw new Error("Cannot create an AES-CTR context: out of memory");
    }
    if (
      lib.EVP_CipherInit_ex(this.#cipher, cipher, null, key, iv, encrypt ? 1 : 0) !== 1 ||
      lib.HMAC_Init_ex!(this.#hmac, macKey, macKey.length, digestOf(lib, mac.sslName), null) !==
        1
    ) {
      this.free();
      throw new Error("Cannot set up AES-CTR: libcrypto refused the key");
    }
  }

  /** `out = data ^ keystream` (in place allowed); the keystream runs on. */
  protected crypt(data: Uint8Array, out: Uint8Array): void {
    if (this.lib.EVP_CipherUpdate(this.#cipher, out, this.#outl, data, data.length) !== 1) {
      throw new Error("libcrypto AES-CTR failed");
    }
  }

  /** HMAC(seqno || a || b) into `tag`. */
  protected mac(seqno: number, a: Uint8Array, b: Uint8Array, tag: Uint8Array): void {
    const lib = this.lib;
    this.#seqView.setUint32(0, seqno);
    if (
      lib.HMAC_Init_ex!(this.#hmac, null, 0, null, null) !== 1 ||
      lib.HMAC_Update!(this.#hmac, this.#seq, 4n) !== 1 ||
      lib.HMAC_Update!(this.#hmac, a, BigInt(a.length)) !== 1 ||
      lib.HMAC_Update!(this.#hmac, b, BigInt(b.length)) !== 1 ||
      lib.HMAC_Final!(this.#hmac, tag, this.#outl) !== 1
    ) throw new Error("libcrypto HMAC failed");
  }

  free(): void {
    if (this.#cipher !== null) this.lib.EVP_CIPHER_CTX_free(this.#cipher);
    if (this.#hmac !== null) this.lib.HMAC_CTX_free!(this.#hmac);
    this.#cipher = this.#hmac = null;
  }
}

const EMPTY = new Uint8Array(0);

/** Seals packets with AES-CTR and an HMAC through libcrypto. */
export class FfiCtrSealer extends CtrBase implements Sealer {
  readonly aadLen: number;

  constructor(lib: LibcryptoSymbols, keys: CtrKeys) {
    super(lib, keys, true);
    this.aadLen = keys.mac.isETM ? 4 : 0;
  }

  seal(packet: Uint8Array, pktLen: number, seqno: number): void {
    const whole = packet.subarray(0, pktLen);
    const tag = packet.subarray(pktLen, pktLen + this.tagLen);
    if (this.etm) {
      const body = packet.subarray(4, pktLen);
      this.crypt(body, body);
      this.mac(seqno, whole, EMPTY, tag);
    } else {
      this.mac(seqno, whole, EMPTY, tag);
      this.crypt(whole, whole);
    }
  }
}

/** Opens AES-CTR packets with an HMAC through libcrypto. */
export class FfiCtrOpener extends CtrBase implements Opener {
  readonly headLen: number;
  /** The decrypted first block (plain MACs: the length is inside it). */
  readonly #first = new Uint8Array(16);
  readonly #tag: Uint8Array;

  constructor(lib: LibcryptoSymbols, keys: CtrKeys) {
    super(lib, keys, false);
    this.headLen = keys.mac.isETM ? 4 : 16;
    this.#tag = new Uint8Array(keys.mac.len);
  }

  lengthOf(head: Uint8Array): number {
    let l = head;
    if (!this.etm) {
      this.crypt(head, this.#first);
      l = this.#first;
    }
    const len = ((l[0]! << 24) | (l[1]! << 16) | (l[2]! << 8) | l[3]!) >>> 0;
    // the length and what follows fill whole blocks (with encrypt-then-MAC, what follows it)
    const aligned = this.etm ? len : len + 4;
    if (len + 4 > MAX_PACKET_SIZE || len < 12 || (aligned & 15) !== 0) {
      throw new Error(`Bad packet length: ${len}`);
    }
    return len;
  }

  open(head: Uint8Array, body: Uint8Array, len: number, seqno: number, out: Uint8Array): void {
    // `out` may overlap the packet: with encrypt-then-MAC it is `body` itself (the MAC is
    // checked first), otherwise it starts 12 bytes before `body` (over the head's bytes)
    const rest = len + 4 - this.headLen; // encrypted bytes in `body`, before the MAC
    const given = body.subarray(rest, rest + this.tagLen);
    if (this.etm) {
      const cipherText = body.subarray(0, rest);
      this.mac(seqno, head, cipherText, this.#tag);
      if (!this.#equal(given)) throw new Error("Invalid MAC");
      this.crypt(cipherText, out);
    } else {
      out.set(this.#first.subarray(4));
      this.crypt(body.subarray(0, rest), out.subarray(12));
      this.mac(seqno, this.#first.subarray(0, 4), out.subarray(0, len), this.#tag);
      if (!this.#equal(given)) throw new Error("Invalid MAC");
    }
  }

  #equal(given: Uint8Array): boolean {
    return this.lib.CRYPTO_memcmp(this.#tag, given, BigInt(this.tagLen)) === 0;
  }
}
