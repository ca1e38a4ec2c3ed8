/**
 * OpenSSL 3's libcrypto through `Deno.dlopen`: the AES-GCM, ChaCha20 and Poly1305 primitives
 * the SSH transport needs, at OpenSSL's speed (AES-128-GCM ~3.9 GiB/s here, against ~170 MiB/s
 * for Deno's `node:crypto`).
 *
 * Only the exact library files in {@link LIBCRYPTO_PATHS} are tried — the same list the `ffi`
 * permission of `deno.json` is narrowed to (README, "Security model"). macOS's unversioned
 * system `/usr/lib/libcrypto.dylib` is never loaded (Apple does not support linking it and
 * aborts the process). Where none loads (Windows, macOS without Homebrew OpenSSL, no
 * permission), {@link openLibcrypto} says why and the transport uses its portable path.
 */

/** Exact files tried, in order; deno.json's `ffi` permission lists the same paths. */
export const LIBCRYPTO_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", // Debian, Ubuntu
  "/usr/lib/aarch64-linux-gnu/libcrypto.so.3",
  "/usr/lib64/libcrypto.so.3", // Fedora, RHEL, SUSE
  "/usr/lib/libcrypto.so.3", // Arch, Alpine
  "/lib/libcrypto.so.3", // Alpine
  "/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib", // Homebrew, Apple silicon
  "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib", // Homebrew, Intel
];

const SYMBOLS = {
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_aes_128_gcm: { parameters: [], result: "pointer" },
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  EVP_chacha20: { parameters: [], result: "pointer" },
  EVP_aes_128_ctr: { parameters: [], result: "pointer" },
  EVP_aes_192_ctr: { parameters: [], result: "pointer" },
  EVP_aes_256_ctr: { parameters: [], result: "pointer" },
  EVP_sha1: { parameters: [], result: "pointer" },
  EVP_sha256: { parameters: [], result: "pointer" },
  EVP_sha512: { parameters: [], result: "pointer" },
  // (a, b, len): 0 when equal, in constant time
  CRYPTO_memcmp: { parameters: ["buffer", "buffer", "usize"], result: "i32" },
  // HMAC for the AES-CTR ciphers' MACs. Deprecated in OpenSSL 3 but exported by every build
  // rsm loads; optional, so a library without them only leaves AES-CTR to ssh2's own code.
  HMAC_CTX_new: { parameters: [], result: "pointer", optional: true },
  HMAC_CTX_free: { parameters: ["pointer"], result: "void", optional: true },
  // (ctx, key, keylen, md, engine); a null key and md start the next MAC with the same key
  HMAC_Init_ex: {
    parameters: ["pointer", "buffer", "i32", "pointer", "pointer"],
    result: "i32",
    optional: true,
  },
  HMAC_Update: { parameters: ["pointer", "buffer", "usize"], result: "i32", optional: true },
  // (ctx, out, outl*)
  HMAC_Final: { parameters: ["pointer", "buffer", "buffer"], result: "i32", optional: true },
  // (ctx, cipher, engine, key, iv, enc)
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  // (ctx, out, outl*, in, inl)
  EVP_CipherUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  // (libctx, algorithm, properties)
  EVP_MAC_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_MAC_CTX_new: { parameters: ["pointer"], result: "pointer" },
  EVP_MAC_CTX_free: { parameters: ["pointer"], result: "void" },
  // (ctx, key, keylen, params)
  EVP_MAC_init: { parameters: ["pointer", "buffer", "usize", "pointer"], result: "i32" },
  EVP_MAC_update: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  // (ctx, out, outl*, outsize)
  EVP_MAC_final: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's functions. */
export type LibcryptoSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A loaded libcrypto, or why there is none. */
export type LibcryptoResult =
  | { ok: true; path: string; symbols: LibcryptoSymbols; poly1305: Deno.PointerValue }
  | { ok: false; reason: string };

/** `EVP_CIPHER_CTX_ctrl` codes (openssl/evp.h). */
export const EVP_CTRL_GCM_GET_TAG = 0x10;
/** Sets the expected tag before `EVP_CipherFinal_ex` of a decryption. */
export const EVP_CTRL_GCM_SET_TAG = 0x11;

let cached: LibcryptoResult | undefined;

function tryOpen(path: string): LibcryptoResult {
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(path, SYMBOLS);
  } catch (err) {
    return { ok: false, reason: `${path}: ${err instanceof Error ? err.message : err}` };
  }
  const poly1305 = lib.symbols.EVP_MAC_fetch(null, new TextEncoder().encode("POLY1305\0"), null);
  if (poly1305 === null) {
    lib.close();
    return { ok: false, reason: `${path}: no POLY1305 MAC (OpenSSL 3 is needed)` };
  }
  return { ok: true, path, symbols: lib.symbols, poly1305 };
}

/**
 * Opens the first loadable libcrypto of {@link LIBCRYPTO_PATHS} (once per process). Files that
 * do not exist are skipped without asking for the `ffi` permission; a file that exists but
 * cannot be opened (no permission, wrong architecture, not OpenSSL 3) is reported in `reason`.
 */
export function openLibcrypto(): LibcryptoResult {
  if (cached) return cached;
  if (typeof Deno.dlopen !== "function") {
    return cached = { ok: false, reason: "this runtime has no Deno.dlopen" };
  }
  const reasons: string[] = [];
  for (const path of LIBCRYPTO_PATHS) {
    if (!exists(path)) continue;
    const r = tryOpen(path);
    if (r.ok) return cached = r;
    reasons.push(r.reason);
  }
  return cached = {
    ok: false,
    reason: reasons.length ? reasons.join("; ") : "no OpenSSL 3 libcrypto at the known paths",
  };
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
