import type ssh2Module from "ssh2";

let loading: Promise<typeof ssh2Module> | undefined;

/**
 * ssh2, loaded on the first connection rather than at daemon start-up (it is one of the
 * heaviest modules rsm has; a daemon with no SSH sessions never needs it).
 */
export function loadSsh2(): Promise<typeof ssh2Module> {
  loading ??= import("ssh2").then((m) => m.default);
  return loading;
}
