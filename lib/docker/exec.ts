/**
 * `docker_exec`: run argv in a container, collect stdout/stderr (bounded), and on timeout or
 * cancellation really stop the process tree.
 *
 * How the stop works: when the container has `/bin/sh`, the command runs under a tiny wrapper
 * (`sh -c 'echo $$ > /tmp/.rsm-exec-ID; "$@"'`, falling back to /dev/shm and /var/tmp) that records its pid; the exec's first process
 * is a session leader, so on timeout a second exec kills its process group and every
 * descendant found through `/proc/*\/status` (plain sh builtins, no ps needed). Without a shell
 * the command runs as is and a timeout can only be reported.
 */
import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import type { DockerHost } from "./host.ts";
import { Capture, type ExecOutcome } from "../output/mod.ts";
import { isEngineError } from "./errors.ts";
import { FrameSplitter } from "./frames.ts";
import { waitAtMost } from "../timeout.ts";

/** Options for {@link dockerExec}. */
export interface ExecOptions {
  cmd: string[];
  workingDir?: string | undefined;
  user?: string | undefined;
  env?: Record<string, string> | undefined;
  stdin?: string | undefined;
  /** Default 30000. */
  timeoutMs?: number | undefined;
  /** Where stdout goes (e.g. a {@link Capture} that spills to the output store). */
  stdout?: Capture | undefined;
  /** Where stderr goes. */
  stderr?: Capture | undefined;
  signal?: AbortSignal | undefined;
  /** Sees every chunk of output as it arrives (for progress notifications). */
  onOutput?: ((chunk: Uint8Array, stream: "stdout" | "stderr") => void) | undefined;
}

/** `docker_exec`'s result: the exec outcome SSH uses too. */
export type ExecResult = ExecOutcome;

const KILL_SCRIPT = `
N="$1"; p=""
for d in /tmp /dev/shm /var/tmp; do [ -n "$p" ] || { read -r p < "$d/$N"; } 2>/dev/null; done
[ -n "$p" ] || exit 3
ppid_of() { while read -r k v; do if [ "$k" = "PPid:" ]; then echo "$v"; return; fi; done < "/proc/$1/status"; }
all="$p"; frontier="$p"; n=0
while [ -n "$frontier" ] && [ $n -lt 20 ]; do
  next=""
  for d in /proc/[0-9]*; do
    c="\${d#/proc/}"; pp="$(ppid_of "$c" 2>/dev/null)"
    for f in $frontier; do [ "$pp" = "$f" ] && next="$next $c"; done
  done
  all="$all $next"; frontier="$next"; n=$((n+1))
done
kill -s KILL -- "-$p" 2>/dev/null
kill -s KILL $all 2>/dev/null
rm -f "/tmp/$N" "/dev/shm/$N" "/var/tmp/$N" 2>/dev/null
exit 0
`;

/** Argv with an env-style list. */
function envList(env?: Record<string, string>): string[] | undefined {
  if (!env) return undefined;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

async function hasShell(c: Docker.Container): Promise<boolean> {
  try {
    await c.infoArchive({ path: "/bin/sh" });
    return true;
  } catch (err) {
    if (isEngineError(err) && err.statusCode === 404) return false;
    throw err;
  }
}

/** Demultiplexes Docker's stream framing into two sinks. */
function demuxInto(
  stream: Duplex,
  out: Capture,
  err: Capture,
  tap?: (chunk: Uint8Array, stream: "stdout" | "stderr") => void,
): Promise<void> {
  const frames = new FrameSplitter((which, body) => {
    (which === 2 ? err : out).push(body);
    tap?.(body, which === 2 ? "stderr" : "stdout");
  });
  return new Promise((resolve, reject) => {
    stream.on("data", (chunk: Uint8Array) => frames.push(chunk));
    stream.on("end", () => resolve());
    stream.on("close", () => resolve());
    stream.on("error", reject);
  });
}

/** Runs `cmd` in `container` (see module doc). A non-zero exit is a result, not an error. */
export function dockerExec(
  host: DockerHost,
  container: string,
  options: ExecOptions,
): Promise<ExecResult> {
  const started = Date.now();
  return host.use(`exec in container ${container}`, async (d) => {
    const c = d.getContainer(container);
    const wrap = await hasShell(c);
    const pidFile = `.rsm-exec-${crypto.randomUUID().slice(0, 12)}`;
    const exec = await c.exec({
      Cmd: wrap ? wrapped(options.cmd, pidFile) : options.cmd,
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: options.stdin !== undefined,
      Tty: false,
      Env: envList(options.env),
      WorkingDir: options.workingDir,
      User: options.user,
    });
    const stream = await exec.start({
      hijack: true,
      stdin: options.stdin !== undefined,
    }) as unknown as Duplex;
    const out = options.stdout ?? new Capture();
    const err = options.stderr ?? new Capture();
    const done = demuxInto(stream, out, err, options.onOutput);
    if (options.stdin !== undefined) {
      stream.write(options.stdin);
      stream.end();
    }
    // waitAtMost removes its timer and abort listener as soon as the command ends: a listener
    // left on the call's signal would keep this call's job, captures and closures alive until
    // the daemon stops (the call's signal depends on the daemon's own), and an hour-long
    // AbortSignal.timeout would keep its timer for the hour.
    const timedOut = !await waitAtMost(done, options.timeoutMs ?? 30_000, {
      signal: options.signal,
    });
    let note: string | undefined;
    if (timedOut) {
      note = await stopCommand(c, wrap, pidFile);
      // give the stream a moment to deliver what was written before the kill
      await waitAtMost(done, 2000);
      stream.destroy();
    }
    const exitCode = timedOut ? null : await exitCodeOf(exec);
    await Promise.all([out.end(), err.end()]);
    return {
      exit_code: exitCode,
      stdout: out,
      stderr: err,
      timed_out: timedOut,
      duration_ms: Date.now() - started,
      ...(timedOut ? { stop_result: note ?? "stopped" } : {}),
    };
  });
}

/** The command under `/bin/sh`, which records its pid in `pidFile` so a stop can find it. */
function wrapped(cmd: string[], pidFile: string): string[] {
  return [
    "/bin/sh",
    "-c",
    `${recordPid(pidFile)}; "$@"; s=$?; ${forgetPid(pidFile)}; exit $s`,
    "rsm-exec",
    ...cmd,
  ];
}

/** Stops a timed-out command; returns a note when it could not. */
async function stopCommand(
  c: Docker.Container,
  wrap: boolean,
  pidFile: string,
): Promise<string | undefined> {
  if (!wrap) {
    return "the container has no /bin/sh, so the timed-out command could not be stopped; it may still run";
  }
  try {
    await killTree(c, pidFile);
    return undefined;
  } catch (e) {
    return `could not stop the command: ${e instanceof Error ? e.message : e}`;
  }
}

/** The exit code once the engine says the exec ended (asked for up to 2 s). */
async function exitCodeOf(exec: Docker.Exec): Promise<number | null> {
  for (let i = 0; i < 50; i++) {
    const info = await exec.inspect();
    if (!info.Running) return info.ExitCode ?? null;
    await new Promise((r) => setTimeout(r, 40));
  }
  return null;
}

/** Shell snippet that writes `$$` to the first writable of /tmp, /dev/shm, /var/tmp. */
export function recordPid(name: string): string {
  return `for d in /tmp /dev/shm /var/tmp; do { echo $$ > "$d/${name}"; } 2>/dev/null && break; done`;
}

/** Shell snippet that removes what {@link recordPid} wrote. */
export function forgetPid(name: string): string {
  return `rm -f "/tmp/${name}" "/dev/shm/${name}" "/var/tmp/${name}" 2>/dev/null`;
}

/**
 * Kills the process group and every descendant of the pid recorded in `pidFile` inside the
 * container (as root, retried while the pid is not written yet, then as the default user).
 */
export async function killTree(c: Docker.Container, pidFile: string): Promise<void> {
  let lastErr = "";
  for (const user of ["0", "0", "0", undefined]) {
    const ex = await c.exec({
      Cmd: ["/bin/sh", "-c", KILL_SCRIPT, "rsm-kill", pidFile],
      User: user,
      AttachStdout: true,
      AttachStderr: true,
    });
    const s = await ex.start({ hijack: true, stdin: false }) as unknown as Duplex;
    const sink = new Capture({ keep: 4096 });
    await demuxInto(s, sink, sink);
    for (let i = 0; i < 50; i++) {
      const info = await ex.inspect();
      if (!info.Running) {
        if (info.ExitCode === 0) return;
        lastErr = info.ExitCode === 3
          ? "the command's pid was not recorded"
          : `kill exited ${info.ExitCode}: ${sink.text()}`;
        await new Promise((r) => setTimeout(r, 150));
        break;
      }
      await new Promise((r) => setTimeout(r, 40));
    }
  }
  throw new Error(lastErr || "kill did not finish");
}
