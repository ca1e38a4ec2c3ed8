/**
 * SSH binary packet framing for the ciphers rsm runs itself — the AEAD ones (AES-GCM,
 * chacha20-poly1305@openssh.com) and AES-CTR with an HMAC (encrypt-then-MAC or not) — in the
 * shape ssh2's transport expects of a cipher (`allocPacket`, `encrypt`, `outSeqno`) and a
 * decipher (`decrypt(data, p, len)`, `inSeqno`).
 *
 * What it does differently from ssh2's JavaScript paths, and why:
 * - A packet is sealed in place and handed to the socket in ONE write (length, body and tag
 *   share one buffer). ssh2's JS chacha path wrote three pieces and kept its nonce in a
 *   module-wide buffer: when the transport is itself an SSH channel (a jump host), writing the
 *   inner length synchronously runs the outer connection's encryption, which overwrote that
 *   shared nonce, so the inner body went out under the outer sequence number and the server
 *   dropped the connection (the "stall through a jump host").
 * - All state is per instance; nothing is shared between connections.
 * - A packet that arrived whole in one chunk of the transport is decrypted in place, and its
 *   payload handed on is a view of that chunk: a chunk a stream emits belongs to its reader
 *   (node:net and ssh2 channels emit a fresh buffer per chunk), and this code writes only the
 *   packet's own bytes, once. A packet split across chunks is gathered in this instance's
 *   scratch buffer and decrypted into a fresh buffer. Either way the consumer may keep the
 *   payload (channel data waiting in a paused stream), and the decipher keeps no view of a
 *   chunk it was given. (A fresh 32 KiB buffer per packet, even from a slab, cost ~10 % of
 *   the daemon's CPU in a `-L` transfer.)
 */
import { Buffer } from "node:buffer";

/** ssh2's limit for a packet's length field (RFC 4253 asks for at least 35000). */
export const MAX_PACKET_SIZE = 35000;
/** Tag length of every AEAD cipher here. */
export const TAG_LEN = 16;
/** The longest MAC here (HMAC-SHA-512). */
export const MAX_TAG_LEN = 64;

/** Seals one packet in place: `packet[0..pktLen)` encrypted, tag written at `pktLen`. */
export interface Sealer {
  /** 16 for AES, 8 for chacha20-poly1305 (padding alignment). */
  readonly blockLen: number;
  /** Bytes of tag (or MAC) after the packet. */
  readonly tagLen: number;
  /**
   * Leading bytes left out of the padding alignment: 4 where the length travels in the clear
   * or apart (AEAD, encrypt-then-MAC), 0 where it is encrypted with the rest.
   */
  readonly aadLen: number;
  seal(packet: Uint8Array, pktLen: number, seqno: number): void;
  free(): void;
}

/** Opens packets: the length from the head first, then the rest and the tag into `out`. */
export interface Opener {
  /**
   * Bytes read before the length is known: 4, or a cipher block where the length is
   * encrypted with the rest (AES-CTR without encrypt-then-MAC).
   */
  readonly headLen: number;
  /** Bytes of tag (or MAC) after the packet. */
  readonly tagLen: number;
  /** The packet length from the head; throws "Bad packet length" when invalid. */
  lengthOf(head: Uint8Array, seqno: number): number;
  /**
   * Verifies the tag and decrypts the packet after its 4 length bytes (`len` bytes, of which
   * the head holds the first `headLen - 4` and `body` the rest, then the tag) into `out`
   * (`len` bytes); throws "Invalid MAC" on a bad tag. `out` may be the packet's own bytes:
   * `body` itself where the head is 4 bytes, or starting `headLen - 4` bytes before it.
   */
  open(head: Uint8Array, body: Uint8Array, len: number, seqno: number, out: Uint8Array): void;
  free(): void;
}

/** What ssh2 passes to `createCipher` (lib/protocol/kex.js). */
export interface OutboundConfig {
  seqno: number;
  onWrite: (data: Uint8Array) => void;
  cipherInfo: { sslName: string; keyLen: number };
  cipherKey: Uint8Array;
  cipherIV?: Uint8Array;
  macInfo?: MacInfo;
  macKey?: Uint8Array;
}

/** ssh2's description of a negotiated MAC (lib/protocol/crypto.js, MAC_INFO). */
export interface MacInfo {
  sslName: string;
  len: number;
  actualLen: number;
  isETM: boolean;
}

/** What ssh2 passes to `createDecipher`. */
export interface InboundConfig {
  seqno: number;
  onPayload: (payload: Buffer) => unknown;
  decipherInfo: { sslName: string; keyLen: number };
  decipherKey: Uint8Array;
  decipherIV?: Uint8Array;
  macInfo?: MacInfo;
  macKey?: Uint8Array;
}

const SLAB_SIZE = 120 * 1024; // under glibc's 128 KiB mmap threshold: freed slabs are reused, no page faults
const SLAB_MIN = 4096;
/** Node's Buffer class proper (`Buffer.from(arrayBuffer, …)` validates and costs more). */
const FastBuffer = (Buffer as unknown as {
  [Symbol.species]: new (
    buf: ArrayBuffer,
    offset: number,
    length: number,
  ) => Buffer;
})[Symbol.species];
/** `bytes` as a Buffer over the same memory (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return new FastBuffer(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length);
}

let slab = new ArrayBuffer(0);
let slabUsed = 0;

/**
 * A Buffer of `n` bytes, uninitialised. Packets of 4 KiB and more are carved from a shared
 * 120 KiB slab: one 32 KiB ArrayBuffer per packet cost a quarter of the receive path's CPU in
 * allocation and as much again in garbage collection. Smaller ones use Node's own 8 KiB pool
 * (`Buffer.allocUnsafe`), so a small payload kept for long pins at most that.
 */
export function packetBuffer(n: number): Buffer {
  if (n < SLAB_MIN || n > SLAB_SIZE) return Buffer.allocUnsafe(n);
  if (slabUsed + n > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabUsed = 0;
  }
  const b = new FastBuffer(slab, slabUsed, n);
  slabUsed += (n + 7) & ~7;
  return b;
}

const finalizer = new FinalizationRegistry<{ free(): void }>((x) => x.free());

/** A packet writer for ssh2 over a {@link Sealer}. */
export class PacketCipher {
  outSeqno: number;
  #onWrite: (data: Uint8Array) => void;
  #sealer: Sealer;
  #dead = false;

  constructor(config: OutboundConfig, sealer: Sealer) {
    this.outSeqno = config.seqno;
    this.#onWrite = config.onWrite;
    this.#sealer = sealer;
    finalizer.register(this, sealer, this);
  }

  free(): void {
    if (this.#dead) return;
    this.#dead = true;
    finalizer.unregister(this);
    this.#sealer.free();
  }

  /** A packet with room for `payloadLen` bytes at offset 5, padding, and the tag. */
  allocPacket(payloadLen: number): Buffer {
    const { blockLen: block, aadLen, tagLen } = this.#sealer;
    let pktLen = 4 + 1 + payloadLen;
    let padLen = block - ((pktLen - aadLen) & (block - 1));
    if (padLen < 4) padLen += block;
    pktLen += padLen;
    const packet = packetBuffer(pktLen + tagLen);
    packet.writeUInt32BE(pktLen - 4, 0);
    packet[4] = padLen;
    crypto.getRandomValues(packet.subarray(5 + payloadLen, pktLen));
    return packet;
  }

  /** Seals a packet from {@link allocPacket} in place and writes it once. */
  encrypt(packet: Buffer): void {
    if (this.#dead) return;
    const pktLen = packet.readUInt32BE(0) + 4;
    const end = pktLen + this.#sealer.tagLen;
    this.#sealer.seal(packet, pktLen, this.outSeqno);
    this.outSeqno = (this.outSeqno + 1) >>> 0;
    this.#onWrite(packet.length === end ? packet : packet.subarray(0, end));
  }
}

/** A packet reader for ssh2 over an {@link Opener}. */
export class PacketDecipher {
  inSeqno: number;
  #onPayload: (payload: Buffer) => unknown;
  #opener: Opener;
  #head: Uint8Array;
  #headPos = 0;
  #len = -1;
  #scratch = new Uint8Array(MAX_PACKET_SIZE + MAX_TAG_LEN);
  #scratchPos = 0;
  #dead = false;

  constructor(config: InboundConfig, opener: Opener) {
    this.inSeqno = config.seqno;
    this.#onPayload = config.onPayload;
    this.#opener = opener;
    this.#head = new Uint8Array(opener.headLen);
    finalizer.register(this, opener, this);
  }

  free(): void {
    if (this.#dead) return;
    this.#dead = true;
    finalizer.unregister(this);
    this.#opener.free();
  }

  /** Consumes `data[p..dataLen)`; returns like ssh2's deciphers (undefined, or where it paused). */
  decrypt(data: Uint8Array, p: number, dataLen: number): number | undefined {
    while (p < dataLen) {
      const headLen = this.#head.length;
      // whether this packet's head was read from this chunk (so the bytes before `p` are it)
      let headHere = headLen === 4;
      if (this.#len < 0) {
        headHere ||= this.#headPos === 0;
        while (this.#headPos < headLen && p < dataLen) this.#head[this.#headPos++] = data[p++]!;
        if (this.#headPos < headLen) return;
        this.#len = this.#opener.lengthOf(this.#head, this.inSeqno);
        this.#scratchPos = 0;
      }
      const need = this.#len + 4 - headLen + this.#opener.tagLen;
      let body: Uint8Array;
      let plain: Buffer;
      if (this.#scratchPos === 0 && dataLen - p >= need && headHere) {
        // whole in this chunk: in place, from just after the length (the head's bytes past
        // the length were read out already and are written over)
        body = data.subarray(p, p + need);
        const at = data.byteOffset + p - (headLen - 4);
        plain = new FastBuffer(data.buffer as ArrayBuffer, at, this.#len);
        p += need;
      } else {
        const n = Math.min(need - this.#scratchPos, dataLen - p);
        this.#scratch.set(data.subarray(p, p + n), this.#scratchPos);
        this.#scratchPos += n;
        p += n;
        if (this.#scratchPos < need) return;
        body = this.#scratch.subarray(0, need);
        plain = packetBuffer(this.#len);
      }
      this.#opener.open(this.#head, body, this.#len, this.inSeqno, plain);
      const padLen = plain[0]!; // the length check guarantees at least one block
      if (padLen + 1 > plain.length) throw new Error("Bad padding length");
      this.inSeqno = (this.inSeqno + 1) >>> 0;
      this.#len = -1;
      this.#headPos = 0;
      this.#scratchPos = 0;
      const ret = this.#onPayload(plain.subarray(1, plain.length - padLen));
      if (ret !== undefined) return ret === false ? p : ret as number;
    }
  }
}
