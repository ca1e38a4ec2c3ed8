import type ssh2Module from "ssh2";
import { applyCertPatches } from "./cert/patch.ts";
import { installCiphers } from "./crypto/mod.ts";
import { applyChannelPatches } from "./ssh2_patch.ts";

let loading: Promise<typeof ssh2Module> | undefined;

/**
 * ssh2, loaded on the first connection rather than at daemon start-up (it is one of the
 * heaviest modules rsm has; a daemon with no SSH sessions never needs it). Patches to ssh2's
 * modules are applied first, before its modules copy what they import: rsm's transport
 * ciphers (lib/ssh/crypto/; before anything loads ssh2's kex.js) and OpenSSH certificates
 * (lib/ssh/cert/patch.ts), and channel code that wasted CPU per call (lib/ssh/ssh2_patch.ts).
 */
export function loadSsh2(): Promise<typeof ssh2Module> {
  loading ??= installCiphers()
    .then(() => applyCertPatches())
    .then(() => applyChannelPatches())
    .then(() => import("ssh2"))
    .then((m) => m.default);
  return loading;
}
