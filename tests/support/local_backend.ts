/**
 * A third shell backend that exists only in the tests: shells on this machine, on a real
 * local PTY (util-linux `script`, tests/support/local_pty.ts). It uses nothing but the public
 * backend interface of lib/term (lib/term/backend.ts), which is the point: a new kind of shell
 * (a Kubernetes pod, a serial line) needs its backend and one `register` call, no lib/term edit.
 */
import { z } from "zod";
import { looksLikeShell, type ShellBackend } from "../../lib/term/mod.ts";
import { localPty } from "./local_pty.ts";

/** The options of `local_shell_open`. */
export interface LocalShellOptions {
  /** Shell command line (default `sh`). */
  command?: string | undefined;
  /** Keep the shell across a restart (saved in state.json; restore starts a new process). */
  keep?: boolean | undefined;
  env?: Record<string, string> | undefined;
}

/** What the backend did, for assertions. */
export interface LocalBackendLog {
  opened: string[];
  restored: string[];
  released: string[];
}

/**
 * The backend of kind "local": `local_shell_*` tools in group "shell", owned by a "machine"
 * (any name; there is only this one). `log` records opens, restores and releases.
 */
export function localShellBackend(
  log: LocalBackendLog = { opened: [], restored: [], released: [] },
): ShellBackend<LocalShellOptions> {
  return {
    kind: "local",
    owner: { field: "machine", noun: "machine", describe: "machine name (any)" },
    tool: {
      group: "shell",
      where: "on this machine",
      openDescription: "Opens a PTY shell on the machine running rsm (a test backend).",
      openInput: (f) => ({
        command: z.string().min(1).max(1000).optional().describe("shell command (default sh)"),
        keep: z.boolean().optional().describe("keep across restarts"),
        env: f.env().optional(),
      }),
    },
    integrates: (o) => looksLikeShell(o.command ?? "sh"),
    open({ owner, id, rows, cols, options }) {
      log.opened.push(`${owner}/${id}`);
      const command = options.command ?? "sh";
      const stream = localPty(command, { rows, cols, env: { PS1: "$ ", ...options.env } });
      return Promise.resolve({
        stream,
        command,
        info: { pty: "local" },
        durable: options.keep === true,
        save: () => options.keep ? { command } : undefined,
        // a local process cannot outlive the test: "kept" means restarted on restore
        detach: () => stream.close(),
        release: () => void log.released.push(`${owner}/${id}`),
      });
    },
    restore({ owner, id, rows, cols, options }) {
      log.restored.push(`${owner}/${id}`);
      const command = typeof options.command === "string" ? options.command : "sh";
      const stream = localPty(command, { rows, cols, env: { PS1: "$ " } });
      return {
        stream,
        command,
        info: { pty: "local" },
        durable: true,
        save: () => ({ command }),
        detach: () => stream.close(),
        release: () => void log.released.push(`${owner}/${id}`),
      };
    },
  };
}
