/**
 * rsm's SSH transport ciphers, installed into ssh2 before it is first loaded.
 *
 * ssh2's native crypto binding does not load under Deno, so by itself it runs every packet
 * through Deno's `node:crypto` (AES-GCM ~170 MiB/s here). This module replaces ssh2's
 * ciphers with:
 * - `libcrypto` path: AES-GCM, chacha20-poly1305 and AES-CTR with HMAC-SHA1/SHA2 from OpenSSL
 *   3's libcrypto through FFI, opened only from the exact paths of ./libcrypto.ts (the `ffi`
 *   permission is narrowed to them; README, "Security model");
 * - `portable` path (no libcrypto, or `REMOTE_SHELL_MCP_CRYPTO=portable`): chacha20-poly1305
 *   from Deno's native ChaCha20 and a WebAssembly Poly1305; AES-GCM and the other ciphers stay
 *   on ssh2's own `node:crypto` code.
 *
 * Both paths fix ssh2's chacha20-poly1305 failure through jump hosts (see packet.ts). On the
 * portable path AES-CTR stays on ssh2's own code, as do truncated MACs (`…-96`) on either.
 */
import { Buffer } from "node:buffer";
// @ts-types="./ssh2_crypto.d.ts"
import ssh2Crypto from "ssh2/lib/protocol/crypto.js";
import { type CtrKeys, ctrSupported, FfiCtrOpener, FfiCtrSealer } from "./aes_ctr.ts";
import { FfiGcmOpener, FfiGcmSealer } from "./aes_gcm.ts";
import {
  type ChaChaEngine,
  chachaOpener,
  chachaSealer,
  FfiChaChaPoly,
  PortableChaChaPoly,
} from "./chacha_poly.ts";
import { type LibcryptoSymbols, openLibcrypto } from "./libcrypto.ts";
import {
  type InboundConfig,
  type MacInfo,
  type Opener,
  type OutboundConfig,
  PacketCipher,
  PacketDecipher,
  type Sealer,
} from "./packet.ts";
import { Poly1305 } from "./poly1305.ts";

/** Which crypto path the transport uses, and why (printed by the benchmark and `rsm`'s log). */
export interface CryptoPath {
  path: "libcrypto" | "portable";
  /** The library file for `libcrypto`; why not, for `portable`. */
  detail: string;
}

/** The environment variable that forces the portable path (`portable`). */
export const CRYPTO_ENV = "REMOTE_SHELL_MCP_CRYPTO";

let installed: Promise<CryptoPath> | undefined;
let instances = 0;

/** How many ciphers and deciphers rsm's code has made (tests check ssh2 really uses them). */
export function cipherInstances(): number {
  return instances;
}

/** The path in use (after {@link installCiphers}). */
let current: CryptoPath | undefined;

/** The crypto path chosen by {@link installCiphers}, or undefined before it ran. */
export function cryptoPath(): CryptoPath | undefined {
  return current;
}

function wantPortable(): boolean {
  try {
    return (Deno.env.get(CRYPTO_ENV) ?? "").toLowerCase() === "portable";
  } catch {
    return false;
  }
}

/** Engines for one connection direction, per the chosen path. */
interface Engines {
  gcmSealer?(key: Uint8Array, iv: Uint8Array): Sealer;
  gcmOpener?(key: Uint8Array, iv: Uint8Array): Opener;
  chacha(key: Uint8Array): ChaChaEngine;
  /** libcrypto, for AES-CTR with an HMAC where {@link ctrSupported} says so. */
  lib?: LibcryptoSymbols;
}

/** Chooses the path: libcrypto unless forced portable or unavailable. */
async function choose(): Promise<{ path: CryptoPath; engines: Engines }> {
  const poly = await Poly1305.create();
  const portable: Engines = { chacha: (key) => new PortableChaChaPoly(poly, key) };
  if (wantPortable()) {
    return { path: { path: "portable", detail: `${CRYPTO_ENV}=portable` }, engines: portable };
  }
  const lib = openLibcrypto();
  if (!lib.ok) return { path: { path: "portable", detail: lib.reason }, engines: portable };
  const engines: Engines = {
    gcmSealer: (key, iv) => new FfiGcmSealer(lib.symbols, key, iv),
    gcmOpener: (key, iv) => new FfiGcmOpener(lib.symbols, key, iv),
    chacha: (key) => new FfiChaChaPoly(lib.symbols, lib.poly1305, key),
    lib: lib.symbols,
  };
  const failed = selfTest(engines);
  if (failed) {
    return {
      path: { path: "portable", detail: `${lib.path} failed its self-test: ${failed}` },
      engines: portable,
    };
  }
  return { path: { path: "libcrypto", detail: lib.path }, engines };
}

/** Seals and opens one packet per cipher; returns what failed, if anything. */
function selfTest(engines: Engines): string | undefined {
  const key = new Uint8Array(64).map((_, i) => i);
  const iv = new Uint8Array(12).map((_, i) => 100 + i);
  const cases: [string, Sealer, Opener][] = [
    [
      "aes-128-gcm",
      engines.gcmSealer!(key.subarray(0, 16), iv),
      engines.gcmOpener!(key.subarray(0, 16), iv),
    ],
    ["chacha20", chachaSealer(engines.chacha(key)), chachaOpener(engines.chacha(key))],
  ];
  if (engines.lib) {
    const lib = engines.lib;
    const k = key.subarray(0, 16);
    const ctrIv = key.subarray(16, 32);
    for (const isETM of [true, false]) {
      const mac = { sslName: "sha256", len: 32, actualLen: 32, isETM };
      if (!ctrSupported(lib, "aes-128-ctr", mac)) continue;
      cases.push([
        `aes-128-ctr hmac-sha256${isETM ? "-etm" : ""}`,
        new FfiCtrSealer(lib, { key: k, iv: ctrIv, mac, macKey: key }),
        new FfiCtrOpener(lib, { key: k, iv: ctrIv, mac, macKey: key }),
      ]);
    }
  }
  for (const [name, sealer, opener] of cases) {
    try {
      const got: Buffer[] = [];
      const c = new PacketCipher(
        { seqno: 7, onWrite: () => {}, cipherInfo: { sslName: name, keyLen: 0 }, cipherKey: key },
        sealer,
      );
      const d = new PacketDecipher(
        {
          seqno: 7,
          onPayload: (p) => void got.push(Buffer.from(p)),
          decipherInfo: { sslName: name, keyLen: 0 },
          decipherKey: key,
        },
        opener,
      );
      const packet = c.allocPacket(3);
      packet.set([1, 2, 3], 5);
      c.encrypt(packet);
      d.decrypt(packet, 0, packet.length);
      c.free();
      d.free();
      if (got.length !== 1 || got[0]!.join() !== "1,2,3") return `${name} round trip`;
    } catch (err) {
      return `${name}: ${err instanceof Error ? err.message : err}`;
    }
  }
}

/** The AES-CTR keys of one direction (after {@link ctrSupported} accepted its MAC). */
function ctrKeys(
  key: Uint8Array,
  c: { cipherIV?: Uint8Array; decipherIV?: Uint8Array; macInfo?: MacInfo; macKey?: Uint8Array },
): CtrKeys {
  return { key, iv: (c.cipherIV ?? c.decipherIV)!, mac: c.macInfo!, macKey: c.macKey! };
}

/**
 * Replaces ssh2's `createCipher`/`createDecipher` for the ciphers above. Must run before ssh2's
 * `lib/protocol/kex.js` is first loaded (it copies both functions at load time): the exports
 * are replaced synchronously, before this function's first `await`, and lib/ssh/ssh2.ts calls
 * it before anything else loads ssh2's modules. Idempotent.
 */
export function installCiphers(): Promise<CryptoPath> {
  if (installed) return installed;
  let engines: Engines | undefined;
  const origCipher = ssh2Crypto.createCipher;
  const origDecipher = ssh2Crypto.createDecipher;
  ssh2Crypto.createCipher = (config: { outbound: OutboundConfig }) => {
    const o = config.outbound;
    const name = o?.cipherInfo?.sslName;
    if (engines && name === "chacha20") {
      instances++;
      return new PacketCipher(o, chachaSealer(engines.chacha(o.cipherKey)));
    }
    if (engines?.gcmSealer && (name === "aes-128-gcm" || name === "aes-256-gcm")) {
      instances++;
      return new PacketCipher(o, engines.gcmSealer(o.cipherKey, o.cipherIV!));
    }
    if (engines?.lib && name && ctrSupported(engines.lib, name, o.macInfo)) {
      instances++;
      return new PacketCipher(o, new FfiCtrSealer(engines.lib, ctrKeys(o.cipherKey, o)));
    }
    return origCipher(config);
  };
  ssh2Crypto.createDecipher = (config: { inbound: InboundConfig }) => {
    const i = config.inbound;
    const name = i?.decipherInfo?.sslName;
    if (engines && name === "chacha20") {
      instances++;
      return new PacketDecipher(i, chachaOpener(engines.chacha(i.decipherKey)));
    }
    if (engines?.gcmOpener && (name === "aes-128-gcm" || name === "aes-256-gcm")) {
      instances++;
      return new PacketDecipher(i, engines.gcmOpener(i.decipherKey, i.decipherIV!));
    }
    if (engines?.lib && name && ctrSupported(engines.lib, name, i.macInfo)) {
      instances++;
      return new PacketDecipher(i, new FfiCtrOpener(engines.lib, ctrKeys(i.decipherKey, i)));
    }
    return origDecipher(config);
  };
  installed = choose().then((chosen) => {
    engines = chosen.engines;
    current = chosen.path;
    return chosen.path;
  });
  return installed;
}
