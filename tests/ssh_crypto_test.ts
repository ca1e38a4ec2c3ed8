/**
 * Known answers for every cipher and MAC rsm offers (README "Security model", transport
 * ciphers): the primitives against published vectors, and whole SSH packets from both crypto
 * paths (libcrypto through FFI, portable) against a reference built from `node:crypto`.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { ctrSupported, FfiCtrOpener, FfiCtrSealer } from "../lib/ssh/crypto/aes_ctr.ts";
import { FfiGcmOpener, FfiGcmSealer, ivIncrement } from "../lib/ssh/crypto/aes_gcm.ts";
import {
  type ChaChaEngine,
  chachaOpener,
  chachaSealer,
  FfiChaChaPoly,
  PortableChaChaPoly,
} from "../lib/ssh/crypto/chacha_poly.ts";
import {
  LIBCRYPTO_PATHS,
  type LibcryptoSymbols,
  openLibcrypto,
} from "../lib/ssh/crypto/libcrypto.ts";
import { cipherInstances, CRYPTO_ENV, installCiphers } from "../lib/ssh/crypto/mod.ts";
import {
  type Opener,
  PacketCipher,
  PacketDecipher,
  type Sealer,
} from "../lib/ssh/crypto/packet.ts";
import { Poly1305 } from "../lib/ssh/crypto/poly1305.ts";
import { REQUIRE_ALL, ROOT } from "./support/env.ts";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const lib = openLibcrypto();
const poly = await Poly1305.create();

// --- Published vectors -------------------------------------------------------------------

/** Poly1305 by the definition (RFC 8439 §2.5), in BigInt: the reference for the engines. */
function poly1305Reference(key: Uint8Array, msg: Uint8Array): Buffer {
  const le = (b: Uint8Array) => BigInt("0x" + (Buffer.from(b).reverse().toString("hex") || "0"));
  const r = le(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = le(key.subarray(16, 32));
  const p = (1n << 130n) - 5n;
  let acc = 0n;
  for (let i = 0; i < msg.length; i += 16) {
    const block = msg.subarray(i, i + 16);
    acc = ((acc + le(block) + (1n << BigInt(8 * block.length))) * r) % p;
  }
  const tag = (acc + s) & ((1n << 128n) - 1n);
  return Buffer.from(tag.toString(16).padStart(32, "0"), "hex").reverse();
}

const RFC8439_POLY_KEY = hex(
  "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b",
);
const RFC8439_POLY_MSG = new TextEncoder().encode("Cryptographic Forum Research Group");
const RFC8439_POLY_TAG = "a8061dc1305136c6c22b8baf0c0127a9";

Deno.test("Poly1305 matches RFC 8439 §2.5.2 in the reference, WebAssembly and libcrypto", () => {
  assert.equal(
    poly1305Reference(RFC8439_POLY_KEY, RFC8439_POLY_MSG).toString("hex"),
    RFC8439_POLY_TAG,
  );
  const tag = new Uint8Array(16);
  poly.auth(RFC8439_POLY_KEY, RFC8439_POLY_MSG.subarray(0, 5), RFC8439_POLY_MSG.subarray(5), tag);
  assert.equal(Buffer.from(tag).toString("hex"), RFC8439_POLY_TAG);
  if (lib.ok) {
    const ffi = new FfiChaChaPoly(lib.symbols, lib.poly1305, new Uint8Array(64));
    ffi.mac(RFC8439_POLY_KEY, RFC8439_POLY_MSG.subarray(0, 4), RFC8439_POLY_MSG.subarray(4), tag);
    ffi.free();
    assert.equal(Buffer.from(tag).toString("hex"), RFC8439_POLY_TAG);
  }
});

Deno.test("ChaCha20 in node:crypto matches RFC 8439 §2.4.2", () => {
  const key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  // OpenSSL's 16-byte IV: 32-bit little-endian block counter (1), then the 96-bit nonce.
  const iv = hex("01000000 000000000000004a00000000");
  const plain = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: ");
  const c = createCipheriv("chacha20", key, iv);
  const out = Buffer.concat([c.update(plain), c.final()]);
  assert.equal(out.subarray(0, 16).toString("hex"), "6e2e359a2568f98041ba0728dd0d6981");
});

/** The GCM spec's test cases 4 (AES-128) and 16 (AES-256). */
const GCM_VECTORS = [
  {
    key: "feffe9928665731c6d6a8f9467308308",
    cipher: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e" +
      "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
    tag: "5bc94fbc3221a5db94fae95ae7121a47",
  },
  {
    key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
    cipher: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" +
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
    tag: "76fc6ece0f4e1768cddf8853bb2d551b",
  },
];
const GCM_PLAIN = hex(
  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" +
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
);
const GCM_AAD = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
const GCM_IV = hex("cafebabefacedbaddecaf888");

Deno.test("AES-GCM in node:crypto and libcrypto matches the GCM spec's test cases", () => {
  for (const v of GCM_VECTORS) {
    const name = v.key.length === 32 ? "aes-128-gcm" : "aes-256-gcm";
    const c = createCipheriv(name, hex(v.key), GCM_IV) as ReturnType<typeof createCipheriv> & {
      setAAD(b: Uint8Array): void;
      getAuthTag(): Buffer;
    };
    c.setAAD(GCM_AAD);
    const out = Buffer.concat([c.update(GCM_PLAIN), c.final()]);
    assert.equal(out.toString("hex"), v.cipher, name);
    assert.equal(c.getAuthTag().toString("hex"), v.tag, name);
    if (!lib.ok) continue;
    const s = lib.symbols;
    const ctx = s.EVP_CIPHER_CTX_new();
    const outl = new Uint8Array(4);
    const buf = new Uint8Array(GCM_PLAIN);
    const tag = new Uint8Array(16);
    const cipher = name === "aes-128-gcm" ? s.EVP_aes_128_gcm() : s.EVP_aes_256_gcm();
    assert.equal(s.EVP_CipherInit_ex(ctx, cipher, null, hex(v.key), GCM_IV, 1), 1);
    assert.equal(s.EVP_CipherUpdate(ctx, null, outl, GCM_AAD, GCM_AAD.length), 1);
    assert.equal(s.EVP_CipherUpdate(ctx, buf, outl, buf, buf.length), 1);
    assert.equal(s.EVP_CipherFinal_ex(ctx, tag, outl), 1);
    assert.equal(s.EVP_CIPHER_CTX_ctrl(ctx, 0x10, 16, tag), 1);
    s.EVP_CIPHER_CTX_free(ctx);
    assert.equal(Buffer.from(buf).toString("hex"), v.cipher, `libcrypto ${name}`);
    assert.equal(Buffer.from(tag).toString("hex"), v.tag, `libcrypto ${name}`);
  }
});

Deno.test("HMAC-SHA1/256/512 in node:crypto match RFC 2202 and RFC 4231 (ssh2's MACs)", () => {
  const h = (alg: string) =>
    createHmac(alg, "Jefe").update("what do ya want for nothing?").digest("hex");
  assert.equal(h("sha1"), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  assert.equal(h("sha256"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  assert.equal(
    h("sha512"),
    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554" +
      "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
  );
});

/** NIST SP 800-38A F.5.1/F.5.3/F.5.5 (CTR-AES128/192/256.Encrypt), four blocks each. */
const CTR_VECTORS = [
  {
    key: "2b7e151628aed2a6abf7158809cf4f3c",
    cipher: "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff" +
      "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee",
  },
  {
    key: "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
    cipher: "1abc932417521ca24f2b0459fe7e6e0b090339ec0aa6faefd5ccc2c6f4ce8e94" +
      "1e36b26bd1ebc670d1bd1d665620abf74f78a7f6d29809585a97daec58c6b050",
  },
  {
    key: "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
    cipher: "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5" +
      "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6",
  },
];
const CTR_IV = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const CTR_PLAIN = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51" +
  "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

Deno.test("AES-CTR in node:crypto and libcrypto matches NIST SP 800-38A", () => {
  for (const v of CTR_VECTORS) {
    const name = `aes-${v.key.length * 4}-ctr`;
    const c = createCipheriv(name, hex(v.key), hex(CTR_IV));
    const got = Buffer.concat([c.update(hex(CTR_PLAIN)), c.final()]);
    assert.equal(got.toString("hex"), v.cipher, `node:crypto ${name}`);
    if (!lib.ok) continue;
    // libcrypto, as two 32-byte packets (a plain MAC: the whole packet is encrypted, the MAC
    // goes after it): the keystream runs on from the first packet into the second
    const mac = { sslName: "sha256", len: 32, actualLen: 32, isETM: false };
    const sealer = new FfiCtrSealer(lib.symbols, {
      key: hex(v.key),
      iv: hex(CTR_IV),
      mac,
      macKey: new Uint8Array(32),
    });
    const out: string[] = [];
    for (const half of [hex(CTR_PLAIN).subarray(0, 32), hex(CTR_PLAIN).subarray(32)]) {
      const packet = new Uint8Array(64);
      packet.set(half);
      sealer.seal(packet, 32, 0);
      out.push(Buffer.from(packet.subarray(0, 32)).toString("hex"));
    }
    sealer.free();
    assert.equal(out.join(""), v.cipher, `libcrypto ${name}`);
  }
});

Deno.test("HMAC-SHA1/256/512 in libcrypto match RFC 2202 and RFC 4231", {
  ignore: !lib.ok,
}, () => {
  if (!lib.ok) return;
  const key = new TextEncoder().encode("Jefe");
  const msg = new TextEncoder().encode("what do ya want for nothing?");
  for (
    const [name, len, want] of [
      ["sha1", 20, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"],
      ["sha256", 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"],
      [
        "sha512",
        64,
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554" +
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
      ],
    ] as const
  ) {
    const s: LibcryptoSymbols = lib.symbols;
    assert.ok(s.HMAC_CTX_new && s.HMAC_Init_ex && s.HMAC_Update && s.HMAC_Final, "HMAC_*");
    const md = name === "sha1" ? s.EVP_sha1() : name === "sha256" ? s.EVP_sha256() : s.EVP_sha512();
    const ctx = s.HMAC_CTX_new!();
    const out = new Uint8Array(len);
    const outl = new Uint8Array(4);
    assert.equal(s.HMAC_Init_ex!(ctx, key, key.length, md, null), 1);
    assert.equal(s.HMAC_Update!(ctx, msg, BigInt(msg.length)), 1);
    assert.equal(s.HMAC_Final!(ctx, out, outl), 1);
    s.HMAC_CTX_free!(ctx);
    assert.equal(Buffer.from(out).toString("hex"), want, `libcrypto HMAC-${name}`);
  }
});

// --- Whole SSH packets against a node:crypto reference -------------------------------------

/** aes*-gcm@openssh.com (RFC 5647) sealed by node:crypto. */
function gcmReference(key: Uint8Array, iv: Uint8Array, packet: Uint8Array): Buffer {
  const name = key.length === 32 ? "aes-256-gcm" : "aes-128-gcm";
  const c = createCipheriv(name, key, iv) as ReturnType<typeof createCipheriv> & {
    setAAD(b: Uint8Array): void;
    getAuthTag(): Buffer;
  };
  c.setAAD(packet.subarray(0, 4));
  const body = Buffer.concat([c.update(packet.subarray(4)), c.final()]);
  return Buffer.concat([packet.subarray(0, 4), body, c.getAuthTag()]);
}

/** chacha20-poly1305@openssh.com (OpenSSH PROTOCOL.chacha20poly1305) from node:crypto. */
function chachaReference(key: Uint8Array, seqno: number, packet: Uint8Array): Buffer {
  const iv = (ctr: number) => {
    const b = Buffer.alloc(16);
    b[0] = ctr;
    b.writeUInt32BE(seqno, 12);
    return b;
  };
  const chacha = (k: Uint8Array, ctr: number, data: Uint8Array) => {
    const c = createCipheriv("chacha20", k, iv(ctr));
    return Buffer.concat([c.update(data), c.final()]);
  };
  const len = chacha(key.subarray(32), 0, packet.subarray(0, 4));
  const polyKey = chacha(key.subarray(0, 32), 0, Buffer.alloc(32));
  const body = chacha(key.subarray(0, 32), 1, packet.subarray(4));
  const sealed = Buffer.concat([len, body]);
  return Buffer.concat([sealed, poly1305Reference(polyKey, sealed)]);
}

/**
 * aes*-ctr with an HMAC (RFC 4253 §6.4; encrypt-then-MAC per OpenSSH's PROTOCOL) sealed by
 * node:crypto: one keystream across packets, the MAC over the sequence number and the packet
 * (plain) or its clear length and ciphertext (ETM).
 */
function ctrReference(
  key: Uint8Array,
  iv: Uint8Array,
  hash: string,
  macKey: Uint8Array,
  etm: boolean,
): Reference {
  const c = createCipheriv(`aes-${key.length * 8}-ctr`, key, iv);
  const seal = (seqno: number, packet: Uint8Array) => {
    const seq = Buffer.alloc(4);
    seq.writeUInt32BE(seqno);
    if (etm) {
      const sealed = Buffer.concat([packet.subarray(0, 4), c.update(packet.subarray(4))]);
      return Buffer.concat([sealed, createHmac(hash, macKey).update(seq).update(sealed).digest()]);
    }
    const mac = createHmac(hash, macKey).update(seq).update(packet).digest();
    return Buffer.concat([c.update(packet), mac]);
  };
  // the keystream runs on across packets; final() releases Deno's native cipher
  return Object.assign(seal, { close: () => void c.final() });
}

/** Seals one packet after another, as one connection direction does; `close` when done. */
type Reference = ((seqno: number, packet: Uint8Array) => Buffer) & { close?: () => void };

interface Suite {
  name: string;
  keyLen: number;
  ivLen: number;
  sealer(key: Uint8Array, iv: Uint8Array): Sealer;
  opener(key: Uint8Array, iv: Uint8Array): Opener;
  /** The reference for one connection direction: packet by packet, in order. */
  reference(key: Uint8Array, iv: Uint8Array): Reference;
}

const suites: Suite[] = [];
const chachaEngines: [string, (key: Uint8Array) => ChaChaEngine][] = [
  ["portable", (key) => new PortableChaChaPoly(poly, key)],
];
if (lib.ok) {
  const l = lib;
  chachaEngines.push(["libcrypto", (key) => new FfiChaChaPoly(l.symbols, l.poly1305, key)]);
  for (const keyLen of [16, 32]) {
    suites.push({
      name: `aes${keyLen * 8}-gcm@openssh.com (libcrypto)`,
      keyLen,
      ivLen: 12,
      sealer: (key, iv) => new FfiGcmSealer(l.symbols, key, iv),
      opener: (key, iv) => new FfiGcmOpener(l.symbols, key, iv),
      reference: (key, iv) => {
        const next = Buffer.from(iv);
        return (_seqno, packet) => {
          const sealed = gcmReference(key, next, packet);
          ivIncrement(next);
          return sealed;
        };
      },
    });
  }
  // every AES-CTR key size with every full-length MAC, plain and encrypt-then-MAC
  for (const keyLen of [16, 24, 32]) {
    for (const [hash, macLen] of [["sha1", 20], ["sha256", 32], ["sha512", 64]] as const) {
      for (const isETM of [false, true]) {
        const mac = { sslName: hash, len: macLen, actualLen: macLen, isETM };
        assert.ok(ctrSupported(l.symbols, `aes-${keyLen * 8}-ctr`, mac));
        const macName = `hmac-${hash === "sha1" ? "sha1" : `sha2-${hash.slice(3)}`}`;
        // the MAC key is derived from the cipher key here (the suite passes one key)
        const macKey = (key: Uint8Array) =>
          Uint8Array.from({ length: macLen }, (_, i) => key[i % key.length]! ^ i);
        suites.push({
          name: `aes${keyLen * 8}-ctr ${macName}${isETM ? "-etm@openssh.com" : ""} (libcrypto)`,
          keyLen,
          ivLen: 16,
          sealer: (key, iv) => new FfiCtrSealer(l.symbols, { key, iv, mac, macKey: macKey(key) }),
          opener: (key, iv) => new FfiCtrOpener(l.symbols, { key, iv, mac, macKey: macKey(key) }),
          reference: (key, iv) => ctrReference(key, iv, hash, macKey(key), isETM),
        });
      }
    }
  }
}
for (const [path, engine] of chachaEngines) {
  suites.push({
    name: `chacha20-poly1305@openssh.com (${path})`,
    keyLen: 64,
    ivLen: 12,
    sealer: (key) => chachaSealer(engine(key)),
    opener: (key) => chachaOpener(engine(key)),
    reference: (key) => (seqno, packet) => chachaReference(key, seqno, packet),
  });
}

for (const s of suites) {
  Deno.test(`${s.name}: packets match the node:crypto reference and open again`, () => {
    const key = randomBytes(s.keyLen);
    const iv = randomBytes(s.ivLen);
    // the counter carries into the next byte on packet 2 (GCM), within a packet (CTR)
    iv.writeUInt32BE(0xffffffff, s.ivLen - 4);
    const reference = s.reference(key, iv);
    const written: Uint8Array[] = [];
    const seq0 = 0xfffffffe; // the sequence number wraps to 0 on the third packet
    const cipher = new PacketCipher({
      seqno: seq0,
      onWrite: (d) => void written.push(Buffer.from(d)),
      cipherInfo: { sslName: s.name, keyLen: s.keyLen },
      cipherKey: key,
    }, s.sealer(key, iv));
    const payloads = [0, 1, 15, 16, 100, 32768].map((n) => randomBytes(n));
    for (const [i, payload] of payloads.entries()) {
      const packet = cipher.allocPacket(payload.length);
      packet.set(payload, 5);
      const plain = Buffer.from(packet.subarray(0, packet.readUInt32BE(0) + 4));
      cipher.encrypt(packet);
      const want = reference((seq0 + i) >>> 0, plain);
      const got = written[i];
      assert.ok(got, `packet ${i} was written`);
      assert.equal(Buffer.from(got).toString("hex"), want.toString("hex"), `packet ${i}`);
    }
    cipher.free();
    reference.close?.();
    assert.equal(cipher.outSeqno, (seq0 + payloads.length) >>> 0);

    // Opened whole, then byte by byte, then in uneven pieces, then with the first packet's
    // head cut after 8 bytes and the rest of that packet whole in the next piece (where the
    // head is a block, its bytes past the length are then not in the piece it is opened from).
    const stream = Buffer.concat(written);
    const startsOf = (chunk: number) =>
      Array.from({ length: Math.ceil(stream.length / chunk) }, (_, i) => i * chunk);
    for (const starts of [...[stream.length, 1, 7, 4096].map(startsOf), [0, 8]]) {
      const got: Buffer[] = [];
      const decipher = new PacketDecipher({
        seqno: seq0,
        onPayload: (p) => void got.push(Buffer.from(p)),
        decipherInfo: { sslName: s.name, keyLen: s.keyLen },
        decipherKey: key,
      }, s.opener(key, iv));
      for (const [i, start] of starts.entries()) {
        const piece = Buffer.from(stream.subarray(start, starts[i + 1] ?? stream.length));
        decipher.decrypt(piece, 0, piece.length);
        piece.fill(0); // the decipher must not keep a view of a buffer it was given
      }
      decipher.free();
      assert.deepEqual(
        got.map((b) => b.toString("hex")),
        payloads.map((b) => b.toString("hex")),
        `pieces from ${starts.slice(0, 3).join(", ")}…`,
      );
    }

    // Payloads kept without a copy (as a paused channel keeps them) stay intact while later
    // chunks are opened: in place only ever writes the packet's own bytes.
    for (const chunk of [stream.length, 4096, 33]) {
      const kept: Buffer[] = [];
      const decipher = new PacketDecipher({
        seqno: seq0,
        onPayload: (p) => void kept.push(p),
        decipherInfo: { sslName: s.name, keyLen: s.keyLen },
        decipherKey: key,
      }, s.opener(key, iv));
      const copy = Buffer.from(stream);
      for (let p = 0; p < copy.length; p += chunk) {
        decipher.decrypt(copy.subarray(p, p + chunk), 0, Math.min(chunk, copy.length - p));
      }
      decipher.free();
      assert.deepEqual(
        kept.map((b) => Buffer.from(b).toString("hex")),
        payloads.map((b) => b.toString("hex")),
        `kept payloads, chunks of ${chunk}`,
      );
    }
  });

  Deno.test(`${s.name}: a flipped bit is refused`, () => {
    const key = randomBytes(s.keyLen);
    const iv = randomBytes(s.ivLen);
    const out: Uint8Array[] = [];
    const cipher = new PacketCipher({
      seqno: 3,
      onWrite: (d) => void out.push(Buffer.from(d)),
      cipherInfo: { sslName: s.name, keyLen: s.keyLen },
      cipherKey: key,
    }, s.sealer(key, iv));
    const packet = cipher.allocPacket(64);
    cipher.encrypt(packet);
    assert.ok(out[0], "the packet was written");
    const bad = Buffer.from(out[0]);
    bad[20]! ^= 1; // the 64-byte packet is longer than 20 bytes
    const decipher = new PacketDecipher({
      seqno: 3,
      onPayload: () => assert.fail("a forged packet was accepted"),
      decipherInfo: { sslName: s.name, keyLen: s.keyLen },
      decipherKey: key,
    }, s.opener(key, iv));
    assert.throws(() => decipher.decrypt(bad, 0, bad.length), /Invalid MAC/);
  });
}

Deno.test("the libcrypto path is available here (CI has OpenSSL 3)", {
  ignore: Deno.build.os !== "linux",
}, () => {
  if (!lib.ok && !REQUIRE_ALL) {
    console.log(`skipped: no libcrypto (${lib.reason})`);
    return;
  }
  assert.ok(lib.ok, lib.ok ? "" : lib.reason);
});

Deno.test("deno.json narrows the ffi permission to exactly the libcrypto paths rsm opens", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  assert.deepEqual(config.permissions.rsm.ffi, [...LIBCRYPTO_PATHS]);
  for (const p of LIBCRYPTO_PATHS) {
    assert.ok(p.startsWith("/") && /libcrypto\.(so\.3|3\.dylib)$/.test(p), p);
    assert.notEqual(p, "/usr/lib/libcrypto.dylib"); // macOS's unversioned system library
  }
});

Deno.test(`${CRYPTO_ENV}=portable keeps rsm off libcrypto`, async () => {
  const code = `import { installCiphers } from "${ROOT}/lib/ssh/crypto/mod.ts";
    console.log(JSON.stringify(await installCiphers()));`;
  const run = async (env: Record<string, string>) => {
    const out = await new Deno.Command("deno", {
      args: ["eval", "-q", "--permission-set=rsm", "--config", `${ROOT}/deno.json`, code],
      env,
      stdout: "piped",
      stderr: "inherit",
    }).output();
    return JSON.parse(new TextDecoder().decode(out.stdout));
  };
  assert.equal((await run({ [CRYPTO_ENV]: "portable" })).path, "portable");
  if (lib.ok) assert.equal((await run({ [CRYPTO_ENV]: "" })).path, "libcrypto");
  assert.ok(await installCiphers());
});

Deno.test({
  name: "aes*-ctr with each HMAC rsm offers, as ssh2 creates them, matches node:crypto",
  // ssh2's own CTR cipher (truncated MACs; the portable path) keeps one node:crypto stream per
  // direction for the connection's life.
  sanitizeResources: false,
}, async () => {
  await installCiphers();
  const before = cipherInstances();
  // @ts-types="../lib/ssh/crypto/ssh2_crypto.d.ts"
  const ssh2Crypto = (await import("ssh2/lib/protocol/crypto.js")).default as unknown as {
    CIPHER_INFO: Record<string, { sslName: string; keyLen: number; ivLen: number }>;
    MAC_INFO: Record<string, { sslName: string; len: number; actualLen: number; isETM: boolean }>;
    createCipher(c: unknown): { allocPacket(n: number): Buffer; encrypt(p: Buffer): void };
    createDecipher(c: unknown): { decrypt(d: Uint8Array, p: number, l: number): unknown };
  };
  const macs = [
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
  ];
  for (const cipherName of ["aes128-ctr", "aes192-ctr", "aes256-ctr"]) {
    for (const macName of macs) {
      const info = ssh2Crypto.CIPHER_INFO[cipherName];
      const mac = ssh2Crypto.MAC_INFO[macName];
      assert.ok(info && mac, `ssh2 knows ${cipherName} and ${macName}`);
      const key = randomBytes(info.keyLen);
      const iv = randomBytes(info.ivLen);
      const macKey = randomBytes(mac.len);
      const out: Buffer[] = [];
      const c = ssh2Crypto.createCipher({
        outbound: {
          onWrite: (d: Uint8Array) => void out.push(Buffer.from(d)),
          cipherInfo: info,
          cipherKey: key,
          cipherIV: Buffer.from(iv),
          seqno: 5,
          macInfo: mac,
          macKey,
        },
      });
      const payload = randomBytes(1000);
      const packet = c.allocPacket(payload.length);
      packet.set(payload, 5);
      // (rsm's packets have room for the MAC after the packet; ssh2's own do not)
      const plain = Buffer.from(packet.subarray(0, packet.readUInt32BE(0) + 4));
      c.encrypt(packet);
      // Reference: RFC 4344 CTR, RFC 4253 MAC (or OpenSSH's encrypt-then-MAC).
      const ctr = createCipheriv(info.sslName, key, iv);
      const seq = Buffer.alloc(4);
      seq.writeUInt32BE(5);
      let want: Buffer;
      if (mac.isETM) {
        const body = ctr.update(plain.subarray(4));
        const tag = createHmac(mac.sslName, macKey).update(seq).update(plain.subarray(0, 4))
          .update(body).digest();
        want = Buffer.concat([plain.subarray(0, 4), body, tag]);
      } else {
        const tag = createHmac(mac.sslName, macKey).update(seq).update(plain).digest();
        want = Buffer.concat([ctr.update(plain), tag]);
      }
      ctr.final();
      const got = Buffer.concat(out);
      assert.equal(got.toString("hex"), want.toString("hex"), `${cipherName} ${macName}`);
      const opened: Buffer[] = [];
      const d = ssh2Crypto.createDecipher({
        inbound: {
          onPayload: (p: Buffer) => void opened.push(Buffer.from(p)),
          decipherInfo: info,
          decipherKey: key,
          decipherIV: Buffer.from(iv),
          seqno: 5,
          macInfo: mac,
          macKey,
        },
      });
      d.decrypt(got, 0, got.length);
      assert.equal(opened[0]?.toString("hex"), payload.toString("hex"), `${cipherName} ${macName}`);
    }
  }
  // on the libcrypto path every one of them ran on rsm's code (a cipher and a decipher each)
  if (lib.ok) assert.equal(cipherInstances() - before, 3 * macs.length * 2);
});
