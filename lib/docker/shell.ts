/**
 * Docker terminals for the shell engine: an exec with a TTY over a hijacked stream, resized with
 * exec resize, ended by killing the exec'd process (which the engine does not do on detach).
 */
import type { Duplex } from "node:stream";
import { z } from "zod";
import { looksLikeShell, PtyEvents, type PtyStream, type ShellBackend } from "../term/mod.ts";
import type { DockerHost } from "./host.ts";
import { killTree, recordPid } from "./exec.ts";

/** Options for {@link openDockerShell}. */
export interface DockerShellOptions {
  container: string;
  /** Default `["/bin/sh"]`. */
  cmd?: string[] | undefined;
  env?: Record<string, string> | undefined;
  user?: string | undefined;
  working_dir?: string | undefined;
  rows?: number | undefined;
  cols?: number | undefined;
  signal?: AbortSignal | undefined;
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

/** The options of `docker_shell_open` (besides host, id and size). */
export type DockerShellOpenOptions = Omit<DockerShellOptions, "rows" | "cols" | "signal">;

/** What the Docker backend needs: a terminal in a container of a host (DockerManager). */
export interface DockerShellBackendOptions {
  openShell(hostId: string, options: DockerShellOptions): Promise<PtyStream>;
}

/**
 * The backend of kind "docker": `docker_shell_*` tools in running containers. Registered at
 * composition (lib/app.ts); see docs/architecture.md, "Shell backends".
 */
export function dockerShellBackend(
  deps: DockerShellBackendOptions,
): ShellBackend<DockerShellOpenOptions> {
  const argv = (o: DockerShellOpenOptions) => o.cmd?.length ? o.cmd : ["/bin/sh"];
  return {
    kind: "docker",
    owner: {
      field: "host_id",
      noun: "Docker host",
      describe: "Docker host id (from docker_connect)",
    },
    tool: {
      group: "docker",
      where: "in a container's shell",
      openDescription: "Opens a PTY shell in a running container (docker exec with a TTY); " +
        "its state persists. Then: docker_shell_run for exact output and exit code; " +
        "docker_shell_write (with wait_until) for interactive programs; docker_shell_screen " +
        "for full-screen ones.",
      openInput: (f) => ({
        container: z.string().min(1).max(300).describe("container name or id"),
        cmd: z.array(z.string().max(100_000)).min(1).max(1000).optional().describe(
          'argv to run (default ["/bin/sh"])',
        ),
        env: f.env().optional(),
        user: z.string().min(1).max(300).optional().describe("user[:group] inside the container"),
        working_dir: z.string().min(1).max(4096).optional().describe("working directory"),
      }),
      policy: {
        kind: "docker",
        open: (o) => ({
          argv: argv(o as DockerShellOpenOptions),
          user: o.user as string | undefined,
          cwd: o.working_dir as string | undefined,
        }),
      },
    },
    integrates: (o) => looksLikeShell(argv(o)),
    async open({ owner, rows, cols, options, signal }) {
      const cmd = argv(options);
      const stream = await deps.openShell(owner, { ...options, cmd, rows, cols, signal });
      return {
        stream,
        info: { container: options.container },
        command: cmd.join(" "),
      };
    },
  };
}
