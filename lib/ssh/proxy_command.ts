/**
 * ssh_config `ProxyCommand`: the SSH connection runs over the stdin/stdout of a local program
 * (`nc`, `socat`, `ssh -W`, `cloudflared access ssh`, `aws ssm start-session`…).
 *
 * It runs an arbitrary program, so it is off unless the person running rsm turns it on
 * (README "ProxyCommand"): `REMOTE_SHELL_MCP_PROXY_COMMAND=1` in the daemon's environment,
 * and the Deno permission to run `sh` (permission set `rsm-proxy` in deno.json, which the
 * launcher picks when that variable is set). The command goes to `sh -c` after OpenSSH's
 * tokens are expanded: `%h` host, `%p` port, `%r` remote user, `%n` the name as given, `%%`.
 */
import { spawn } from "node:child_process";
import type { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { RsmError } from "../errors.ts";

/** The environment variable that turns ProxyCommand on. */
export const PROXY_COMMAND_ENV = "REMOTE_SHELL_MCP_PROXY_COMMAND";

/** Whether the person running rsm turned ProxyCommand on. */
export function proxyCommandEnabled(): boolean {
  return /^(1|true|yes|on)$/i.test(Deno.env.get(PROXY_COMMAND_ENV) ?? "");
}

/** Tokens of a ProxyCommand. */
export interface ProxyTokens {
  host: string;
  port: number;
  user: string;
  /** The name as the user wrote it (alias). */
  originalHost: string;
}

/**
 * Expands `%h %p %r %n %%` in a ProxyCommand (other tokens are left as written).
 *
 * @example
 * ```ts
 * expandProxyCommand("nc %h %p", { host: "10.0.0.5", port: 22, user: "u", originalHost: "b" });
 * // "nc 10.0.0.5 22"
 * ```
 */
export function expandProxyCommand(command: string, t: ProxyTokens): string {
  return command.replace(/%(.)/g, (m, c: string) => {
    switch (c) {
      case "h":
        return t.host;
      case "p":
        return String(t.port);
      case "r":
        return t.user;
      case "n":
        return t.originalHost;
      case "%":
        return "%";
      default:
        return m;
    }
  });
}

function refuse(command: string, why: string): RsmError {
  return new RsmError(
    "PROXY_COMMAND_DISABLED",
    `Cannot use ProxyCommand "${command}" from ssh_config: ${why}. ProxyCommand runs a local ` +
      `program, so it is off by default. To turn it on, set ${PROXY_COMMAND_ENV}=1 in the ` +
      `environment rsm starts with (the daemon then runs with Deno's permission set ` +
      `"rsm-proxy", which may run sh) and restart the daemon (rsm stop), or use ProxyJump / ` +
      `jump_hosts instead`,
  );
}

/** Starts `command` and returns its stdin/stdout as one stream for ssh2. */
export function startProxyCommand(
  command: string,
  tokens: ProxyTokens,
  signal: AbortSignal,
): Promise<Duplex> {
  if (!proxyCommandEnabled()) {
    return Promise.reject(refuse(command, `${PROXY_COMMAND_ENV} is not set`));
  }
  if (Deno.permissions.querySync({ name: "run", command: "sh" }).state !== "granted") {
    return Promise.reject(
      refuse(command, `${PROXY_COMMAND_ENV} is set but this rsm may not run sh (Deno permission)`),
    );
  }
  const line = expandProxyCommand(command, tokens);
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", line], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    let exited = false;
    child.stderr!.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    const kill = () => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
    };
    const stream = new Duplex({
      read() {
        child.stdout!.resume();
      },
      write(chunk, _enc, cb) {
        if (child.stdin!.destroyed) return cb(new Error("the ProxyCommand exited"));
        child.stdin!.write(chunk, cb);
      },
      final(cb) {
        child.stdin!.end();
        cb();
      },
      destroy(err, cb) {
        kill();
        cb(err);
      },
    });
    child.stdout!.on("data", (d: Buffer) => {
      if (!stream.push(d)) child.stdout!.pause();
    });
    child.stdout!.on("end", () => stream.push(null));
    child.stdin!.on("error", () => {});
    const onAbort = () => {
      kill();
      reject(signal.reason ?? new Error("aborted"));
    };
    child.once("error", (err) => {
      signal.removeEventListener("abort", onAbort);
      reject(new RsmError("CONNECT_FAILED", `Cannot start ProxyCommand "${line}": ${err.message}`));
    });
    child.once("spawn", () => {
      signal.removeEventListener("abort", onAbort);
      resolve(stream);
    });
    child.once("exit", (code, sig) => {
      exited = true;
      const why = sig ? `signal ${sig}` : `exit code ${code}`;
      if (stream.destroyed) return;
      if (code === 0) stream.destroy();
      else {
        stream.destroy(
          new Error(
            `ProxyCommand "${line}" ended (${why})${stderr.trim() ? `: ${stderr.trim()}` : ""}`,
          ),
        );
      }
    });
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
