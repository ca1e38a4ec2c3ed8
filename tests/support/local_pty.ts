/**
 * A real local PTY for engine tests without SSH: util-linux `script` runs a shell on a
 * pseudo-terminal and copies our pipe to its master. Gives a {@link PtyStream}.
 */
import { PtyEvents, type PtyStream } from "../../lib/term/pty.ts";

/** Options for {@link localPty}. */
export interface LocalPtyOptions {
  rows?: number;
  cols?: number;
  env?: Record<string, string>;
}

/** Starts `command` (a shell command line) on a fresh local PTY. */
export function localPty(command: string, options: LocalPtyOptions = {}): PtyStream & {
  pid: number;
} {
  const rows = options.rows ?? 24;
  const cols = options.cols ?? 80;
  const child = new Deno.Command("script", {
    args: ["-qfec", `stty rows ${rows} cols ${cols}; exec ${command}`, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    env: { TERM: "xterm-256color", PS1: "$ ", ...options.env },
  }).spawn();
  const ev = new PtyEvents();
  const writer = child.stdin.getWriter();
  (async () => {
    for await (const chunk of child.stdout) ev.data(chunk);
  })().catch(() => {});
  child.status.then((s) => ev.exit(s.signal ? null : s.code));
  let closed = false;
  return {
    pid: child.pid,
    async write(data) {
      await writer.write(typeof data === "string" ? new TextEncoder().encode(data) : data);
    },
    resize() {},
    close() {
      if (closed) return;
      closed = true;
      writer.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    },
    onData: (cb) => ev.onData(cb),
    onExit: (cb) => ev.onExit(cb),
  };
}
