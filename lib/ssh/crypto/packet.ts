/**
 * SSH binary packet framing for AEAD ciphers (AES-GCM, chacha20-poly1305@openssh.com), in the
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
 * - Received bytes are never retained past `decrypt()`: a split packet is copied into this
 *   instance's scratch buffer, and every payload is decrypted into a fresh buffer (the
 *   consumer may keep it, e.g. channel data waiting in a paused stream).
 */
import { Buffer } from "node:buffer";

/** ssh2's limit for a packet's length field (RFC 4253 asks for at least 35000). */
export const MAX_PACKET_SIZE = 35000;
/** Tag length of every AEAD cipher here. */
export const TAG_LEN = 16;

/** Seals one packet in place: `packet[0..pktLen)` encrypted, tag written at `pktLen`. */
export interface Sealer {
  /** 16 for AES-GCM, 8 for chacha20-poly1305 (padding alignment). */
  readonly blockLen: number;
  seal(packet: Uint8Array, pktLen: number, seqno: number): void;
  free(): void;
}

/** Opens packets: the length first, then body + tag into a fresh plaintext buffer. */
export interface Opener {
  /** The packet length from the 4 length bytes; throws "Bad packet length" when invalid. */
  lengthOf(head: Uint8Array, seqno: number): number;
  /** Verifies the tag and decrypts `body[0..len)`; throws "Invalid MAC" on a bad tag. */
  open(head: Uint8Array, body: Uint8Array, len: number, seqno: number): Buffer;
  free(): void;
}

/** What ssh2 passes to `createCipher` (lib/protocol/kex.js). */
export interface OutboundConfig {
  seqno: number;
  onWrite: (data: Uint8Array) => void;
  cipherInfo: { sslName: string; keyLen: number };
  cipherKey: Uint8Array;
  cipherIV?: Uint8Array;
}

/** What ssh2 passes to `createDecipher`. */
export interface InboundConfig {
  seqno: number;
  onPayload: (payload: Buffer) => unknown;
  decipherInfo: { sslName: string; keyLen: number };
  decipherKey: Uint8Array;
  decipherIV?: Uint8Array;
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

/** An AEAD packet writer for ssh2. */
export class AeadCipher {
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
    const block = this.#sealer.blockLen;
    let pktLen = 4 + 1 + payloadLen;
    let padLen = block - ((pktLen - 4) & (block - 1));
    if (padLen < 4) padLen += block;
    pktLen += padLen;
    const packet = packetBuffer(pktLen + TAG_LEN);
    packet.writeUInt32BE(pktLen - 4, 0);
    packet[4] = padLen;
    crypto.getRandomValues(packet.subarray(5 + payloadLen, pktLen));
    return packet;
  }

  /** Seals a packet from {@link allocPacket} in place and writes it once. */
  encrypt(packet: Buffer): void {
    if (this.#dead) return;
    const pktLen = packet.readUInt32BE(0) + 4;
    this.#sealer.seal(packet, pktLen, this.outSeqno);
    this.outSeqno = (this.outSeqno + 1) >>> 0;
    this.#onWrite(
      packet.length === pktLen + TAG_LEN ? packet : packet.subarray(0, pktLen + TAG_LEN),
    );
  }
}

/** An AEAD packet reader for ssh2. */
export class AeadDecipher {
  inSeqno: number;
  #onPayload: (payload: Buffer) => unknown;
  #opener: Opener;
  #head = new Uint8Array(4);
  #headPos = 0;
  #len = -1;
  #scratch = new Uint8Array(MAX_PACKET_SIZE + TAG_LEN);
  #scratchPos = 0;
  #dead = false;

  constructor(config: InboundConfig, opener: Opener) {
    this.inSeqno = config.seqno;
    this.#onPayload = config.onPayload;
    this.#opener = opener;
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
      if (this.#len < 0) {
        while (this.#headPos < 4 && p < dataLen) this.#head[this.#headPos++] = data[p++]!;
        if (this.#headPos < 4) return;
        this.#len = this.#opener.lengthOf(this.#head, this.inSeqno);
        this.#scratchPos = 0;
      }
      const need = this.#len + TAG_LEN;
      let body: Uint8Array;
      if (this.#scratchPos === 0 && dataLen - p >= need) {
        body = data.subarray(p, p + need);
        p += need;
      } else {
        const n = Math.min(need - this.#scratchPos, dataLen - p);
        this.#scratch.set(data.subarray(p, p + n), this.#scratchPos);
        this.#scratchPos += n;
        p += n;
        if (this.#scratchPos < need) return;
        body = this.#scratch.subarray(0, need);
      }
      const plain = this.#opener.open(this.#head, body, this.#len, this.inSeqno);
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
