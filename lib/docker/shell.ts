/**
 * Docker terminals for the shell engine: an exec with a TTY over a hijacked stream, resized with
 * exec resize, ended by killing the exec'd process (which the engine does not do on detach).
 */
import type { Duplex } from "node:stream";
import { PtyEvents, type PtyStream } from "../term/pty.ts";
import type { DockerHost } from "./host.ts";
import { killTree, recordPid } from "./exec.ts";

/** Options for {@link openDockerShell}. */
export interface DockerShellOptions {
  container: string;
  /** Default `["/bin/sh"]`. */
  cmd?: string[];
  env?: Record<string, string>;
  user?: string;
  working_dir?: string;
  rows?: number;
  cols?: number;
  signal?: AbortSignal;
}

/** Opens a TTY exec in a container and returns it as a {@link PtyStream}. */
export function openDockerShell(host: DockerHost, options: DockerShellOptions): Promise<PtyStream> {
  const rows = options.rows ?? 24;
  const cols = options.cols ?? 80;
  const argv = options.cmd?.length ? options.cmd : ["/bin/sh"];
  const tag = crypto.randomUUID().slice(0, 12);
  const pidFile = `.rsm-shell-${tag}`;
  return host.use(`open a shell in container ${options.container}`, async (d) => {
    const c = d.getContainer(options.container);
    const env = { TERM: "xterm-256color", ...options.env };
    // record the pid (when there is a shell) so close() can end the process
    let wrapped = false;
    try {
      await c.infoArchive({ path: "/bin/sh" });
      wrapped = true;
    } catch { /* no shell: run argv directly */ }
    const cmd = wrapped
      ? ["/bin/sh", "-c", `${recordPid(pidFile)}; exec "$@"`, "rsm-shell", ...argv]
      : argv;
    const exec = await c.exec({
      Cmd: cmd,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      User: options.user,
      WorkingDir: options.working_dir,
    });
    const stream = await exec.start({ hijack: true, stdin: true, Tty: true }) as unknown as Duplex;
    const ev = new PtyEvents();
    let closed = false;
    const finish = async () => {
      let code: number | null = null;
      for (let i = 0; i < 25; i++) {
        try {
          const info = await exec.inspect();
          if (!info.Running) {
            code = info.ExitCode ?? null;
            break;
          }
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 40));
      }
      ev.exit(closed && code === 137 ? null : code);
    };
    stream.on("data", (chunk: Uint8Array) => ev.data(new Uint8Array(chunk)));
    stream.on("end", () => void finish());
    stream.on("close", () => void finish());
    stream.on("error", () => void finish());
    exec.resize({ h: rows, w: cols }).catch(() => {});
    const pty: PtyStream = {
      write(data) {
        return new Promise((resolve, reject) => {
          if (stream.destroyed) return reject(new Error("the shell's stream is closed"));
          stream.write(data, (err) => err ? reject(err) : resolve());
        });
      },
      async resize(r, c2) {
        await exec.resize({ h: r, w: c2 });
      },
      close() {
        if (closed) return;
        closed = true;
        const kill = async () => {
          if (wrapped) {
            try {
              await killTree(c, pidFile);
            } catch { /* container gone or process already ended */ }
          }
          stream.destroy();
          await finish();
        };
        void kill();
      },
      onData: (cb) => ev.onData(cb),
      onExit: (cb) => ev.onExit(cb),
    };
    return pty;
  });
}
