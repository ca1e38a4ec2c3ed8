/**
 * Small patches to ssh2's channel code that cut per-call CPU under Deno (README "Transport
 * ciphers"). Each keeps ssh2's behaviour and only drops work whose result ssh2 throws away;
 * OpenSSH interop tests (tests/ssh_cipher_interop_test.ts, tests/ssh_exec_test.ts) cover them.
 *
 * - `Channel.destroy()` calls `end()` and `close()`. Node's streams call `destroy()` once both
 *   sides of a channel ended, and `end()` on a stream that already finished builds an
 *   `ERR_STREAM_ALREADY_FINISHED` error that nobody receives (no callback was given). Deno's
 *   Node error classes capture a stack trace, ~0.4 ms per exec channel here, so
 *   `end()` is skipped when the writable side already ended.
 */
// deno-lint-ignore no-explicit-any
type Any = any;

let applying: Promise<void> | undefined;

/** Applies the patches described above, once. Must run before `import("ssh2")`. */
export function applyChannelPatches(): Promise<void> {
  applying ??= (async () => {
    const { Channel } = (await import("ssh2/lib/Channel.js")).default as Any;
    Channel.prototype.destroy = function (this: Any) {
      if (!this.writableEnded) this.end();
      this.close();
      return this;
    };
  })();
  return applying;
}
