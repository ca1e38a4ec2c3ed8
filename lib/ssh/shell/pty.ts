import type { Client, ClientChannel } from "ssh2";
import { Buffer } from "node:buffer";
import { RsmError } from "../../errors.ts";
import { PtyEvents, type PtyOpenOptions, type PtyStream } from "../../term/pty.ts";

/** Options for {@link openSshPty}. */
export interface SshPtyOptions extends PtyOpenOptions {
  /** Run this instead of the login shell. */
  command?: string | undefined;
}

/** Quotes a string for a POSIX shell. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Checks environment variable names (they are typed into a remote shell command line). */
export function checkEnvNames(env: Record<string, string> | undefined): void {
  for (const k of Object.keys(env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
      throw new RsmError(
        "BAD_ARGUMENT",
        `Cannot set environment variable "${k}": not a valid name`,
      );
    }
  }
}

/**
 * Opens a PTY shell on an SSH connection: the login shell, or `command`. `env` is applied by
 * the remote shell (sshd accepts only `AcceptEnv` names through SSH env requests, so that
 * route would silently drop most variables).
 */
export async function openSshPty(client: Client, options: SshPtyOptions): Promise<PtyStream> {
  checkEnvNames(options.env);
  const pty = {
    term: options.term ?? "xterm-256color",
    rows: options.rows,
    cols: options.cols,
    width: 0,
    height: 0,
  };
  const exports = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${shq(v)}`);
  let command = options.command;
  if (exports.length) {
    command = command !== undefined
      ? `export ${exports.join(" ")}; ${command}`
      : `exec env ${exports.join(" ")} "\${SHELL:-/bin/sh}" -l`;
  }
  if (`${command ?? ""}${pty.term}`.includes("\0")) {
    // OpenSSH drops the whole connection (every shell and forward on it) for a NUL here.
    throw new RsmError(
      "BAD_ARGUMENT",
      "Cannot open a shell: its command, env or term contains a NUL character (\\0), which " +
        "SSH cannot carry; remove it",
    );
  }
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    const cb = (err: Error | undefined, ch: ClientChannel) => err ? reject(err) : resolve(ch);
    try {
      if (command !== undefined) client.exec(command, { pty }, cb);
      else client.shell(pty, cb);
    } catch (err) {
      reject(err);
    }
  }).catch((err) => {
    throw new RsmError("SHELL_OPEN_FAILED", `Cannot open a shell: ${err?.message ?? err}`, {
      cause: err,
    });
  });
  return channelStream(channel);
}

/** Wraps an ssh2 channel (with a PTY) as a {@link PtyStream}. */
export function channelStream(channel: ClientChannel): PtyStream {
  const ev = new PtyEvents();
  let code: number | null = null;
  let closed = false;
  channel.on("data", (b: Uint8Array) => ev.data(new Uint8Array(b)));
  channel.stderr?.on("data", (b: Uint8Array) => ev.data(new Uint8Array(b)));
  channel.on("exit", (c: number | null) => {
    if (typeof c === "number") code = c;
  });
  channel.on("close", () => {
    closed = true;
    ev.exit(code);
  });
  channel.on("error", () => {});
  return {
    write(data) {
      if (closed) {
        return Promise.reject(new RsmError("CLOSED", "the shell's channel is closed"));
      }
      const buf = Buffer.from(typeof data === "string" ? new TextEncoder().encode(data) : data);
      return new Promise<void>((resolve) => {
        if (channel.write(buf)) resolve();
        else {
          const done = () => {
            channel.off("drain", done);
            channel.off("close", done);
            resolve();
          };
          channel.once("drain", done);
          channel.once("close", done);
        }
      });
    },
    resize(rows, cols) {
      channel.setWindow(rows, cols, 0, 0);
    },
    close() {
      if (closed) return;
      try {
        channel.signal("HUP");
      } catch { /* not supported */ }
      try {
        channel.close();
      } catch { /* gone */ }
    },
    onData: (cb) => ev.onData(cb),
    onExit: (cb) => ev.onExit(cb),
  };
}

/** Runs a command without a PTY and collects its output (for small helper commands). */
export function sshRun(
  client: Client,
  command: string,
  signal?: AbortSignal,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      let out = "";
      let errText = "";
      let code: number | null = null;
      const onAbort = () => ch.close();
      signal?.addEventListener("abort", onAbort, { once: true });
      ch.on("data", (b: Uint8Array) => out += new TextDecoder().decode(b));
      ch.stderr.on("data", (b: Uint8Array) => errText += new TextDecoder().decode(b));
      ch.on("exit", (c: number | null) => code = c);
      ch.on("close", () => {
        signal?.removeEventListener("abort", onAbort);
        if (signal?.aborted) reject(signal.reason);
        else resolve({ code, stdout: out, stderr: errText });
      });
    });
  });
}
