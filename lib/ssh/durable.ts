/**
 * Durable commands (`ssh_exec` with `durable: true`, README "Jobs"): the command runs detached
 * on the server, its output and exit status in files there, so it survives an SSH disconnect
 * and a restart (or `kill -9`) of the daemon, which re-attaches by reading the files again.
 *
 * Layout on the server, in `${XDG_CACHE_HOME:-~/.cache}/rsm/jobs/<job id>/` (mode 0700):
 * `cmd` (the script: cd, exports, the command), `out`, `err`, `pid` (the command's process
 * group), `wrapper` (the pid of the shell that waits for it) and `status` (its exit status,
 * written when it ends). The command runs under `setsid` in its own session and process
 * group; a second `setsid`'d shell waits for it and records the status, so signalling the
 * command's group leaves the recorder alive. Needs `setsid` (util-linux or busybox).
 */
import type { Client, ClientChannel } from "ssh2";
import { Buffer } from "node:buffer";
import { RsmError } from "../errors.ts";
import type { JobControl, JobOutcome } from "../jobs/mod.ts";
import { killGroup, shellQuote, signalGroup } from "./exec.ts";

/** What re-attaching to a durable command needs (persisted; no secrets). */
export interface DurableRecord {
  session_id: string;
  /** The job's directory on the server. */
  dir: string;
  /** The command's process group id. */
  pid: number;
  /** Epoch ms after which the command is stopped (timeout_ms). */
  deadline: number;
}

/** Options for {@link startDetached}. */
export interface DetachedOptions {
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
}

/** Returns the connected client, waiting for a reconnect; throws when the session is gone. */
export type ClientSource = (signal: AbortSignal) => Promise<Client>;

const LAUNCH = `
umask 077
mkdir -p "$d" || { echo "cannot create $d" >&2; exit 125; }
cat > "$d/cmd" || exit 125
command -v setsid >/dev/null 2>&1 || { echo "setsid is not installed on the server" >&2; exit 127; }
sh_="\${SHELL:-/bin/sh}"
setsid /bin/sh -c '
d=$1; sh_=$2
echo $$ > "$d/wrapper"
setsid "$sh_" "$d/cmd" < /dev/null > "$d/out" 2> "$d/err" &
echo $! > "$d/pid"
wait $!
echo $? > "$d/status.tmp" && mv "$d/status.tmp" "$d/status"
' rsm-job "$d" "$sh_" < /dev/null > /dev/null 2>&1 &
i=0
while [ ! -s "$d/pid" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
printf '%s\\n%s\\n' "$d" "$(cat "$d/pid" 2>/dev/null)"
`;

/** Starts `command` detached (see module doc); returns its directory and process group. */
export async function startDetached(
  client: Client,
  jobId: string,
  command: string,
  options: DetachedOptions = {},
): Promise<{ dir: string; pid: number }> {
  const script: string[] = [];
  if (options.cwd) script.push(`cd -- ${shellQuote(options.cwd)} || exit 126`);
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
      throw new RsmError("BAD_ARGUMENT", `Cannot set env var "${k}": not a valid variable name`);
    }
    script.push(`export ${k}=${shellQuote(v)}`);
  }
  script.push(command, "");
  const launch = `d="\${XDG_CACHE_HOME:-$HOME/.cache}/rsm/jobs/${jobId}"\n${LAUNCH}`;
  const r = await runScript(client, launch, script.join("\n"));
  const [dir, pid] = r.stdout.toString().trim().split("\n");
  if (r.code !== 0 || !dir || !/^\d+$/.test(pid ?? "")) {
    throw new RsmError(
      "EXEC_FAILED",
      `Cannot start the durable command: ${
        r.stderr.toString().trim() || `the launcher exited ${r.code} without a pid`
      }`,
    );
  }
  return { dir, pid: Number(pid) };
}

/**
 * Follows a detached command until it ends: copies new output into the job (polling the
 * files, 250 ms to 1 s apart), reconnects through `source` when the connection drops, stops
 * the command at its deadline, and sets the job's killer to signal its process group.
 */
export async function followDetached(
  source: ClientSource,
  rec: DurableRecord,
  job: JobControl,
  offsets = { out: 0, err: 0 },
): Promise<JobOutcome> {
  let signalled = false;
  job.setKiller(async (sig) => {
    signalled = true;
    return await signalGroup(await source(AbortSignal.timeout(15_000)), rec.pid, sig);
  });
  let delay = 250;
  let timedOut = false;
  while (true) {
    if (job.signal.aborted) throw job.signal.reason;
    let client: Client;
    try {
      client = await source(job.signal);
    } catch (err) {
      if (job.signal.aborted) throw err;
      if (err instanceof RsmError && (err.code === "NOT_FOUND" || err.code === "CLOSED")) {
        return { lost: `session ${rec.session_id} is gone: ${err.message}` };
      }
      await sleep(1000, job.signal);
      continue;
    }
    if (!timedOut && Date.now() > rec.deadline) {
      timedOut = true;
      await killGroup(client, rec.pid).catch(() => {});
    }
    let poll: Poll;
    try {
      poll = await pollOnce(client, rec.dir, offsets);
    } catch (err) {
      if (job.signal.aborted) throw err;
      await sleep(1000, job.signal);
      continue;
    }
    if (poll.out.length) job.write("stdout", poll.out);
    if (poll.err.length) job.write("stderr", poll.err);
    offsets.out += poll.out.length;
    offsets.err += poll.err.length;
    const caughtUp = !poll.more;
    if (poll.status !== undefined && caughtUp) {
      const code = poll.status;
      if ((signalled || timedOut) && code > 128 && SIGNALS[code - 128]) {
        return { exit_code: null, signal: `SIG${SIGNALS[code - 128]}`, timed_out: timedOut };
      }
      return { exit_code: code, timed_out: timedOut };
    }
    if (!poll.alive && caughtUp) {
      return { lost: `the command's recorder on the server is gone without an exit status` };
    }
    if (poll.more) delay = 0;
    else if (poll.out.length || poll.err.length) delay = 250;
    else delay = Math.min(1000, Math.max(250, delay * 2));
    if (delay) await sleep(delay, job.signal);
  }
}

/** Removes a durable command's directory on the server. */
export async function removeDetached(client: Client, dir: string): Promise<void> {
  if (!/\/rsm\/jobs\/j[0-9a-f]+$/.test(dir)) return; // never anything else
  await runScript(client, `rm -rf -- ${shellQuote(dir)}`, "");
}

interface Poll {
  out: Uint8Array;
  err: Uint8Array;
  status?: number | undefined;
  alive: boolean;
  /** More output is waiting than one poll carries. */
  more: boolean;
}

const CAP = 4 << 20;
const SIGNALS: Record<number, string> = {
  1: "HUP",
  2: "INT",
  3: "QUIT",
  6: "ABRT",
  9: "KILL",
  10: "USR1",
  12: "USR2",
  13: "PIPE",
  14: "ALRM",
  15: "TERM",
};

async function pollOnce(
  client: Client,
  dir: string,
  offsets: { out: number; err: number },
): Promise<Poll> {
  const script = `d=${shellQuote(dir)}
s=$(cat "$d/status" 2>/dev/null)
a=1
if [ -z "$s" ]; then
  w=$(cat "$d/wrapper" 2>/dev/null)
  if ! kill -0 "$w" 2>/dev/null; then s=$(cat "$d/status" 2>/dev/null); [ -n "$s" ] || a=0; fi
fi
o=$(wc -c < "$d/out" 2>/dev/null) || o=0
e=$(wc -c < "$d/err" 2>/dev/null) || e=0
no=$((o - ${offsets.out})); [ $no -gt ${CAP} ] && no=${CAP}; [ $no -lt 0 ] && no=0
ne=$((e - ${offsets.err})); [ $ne -gt ${CAP} ] && ne=${CAP}; [ $ne -lt 0 ] && ne=0
printf '%s %s %s %s %s %s\\n' $no $ne "\${s:--}" $a $o $e
[ $no -gt 0 ] && tail -c +${offsets.out + 1} "$d/out" | head -c $no
[ $ne -gt 0 ] && tail -c +${offsets.err + 1} "$d/err" | head -c $ne
exit 0`;
  const r = await runScript(client, script, "");
  const nl = r.stdout.indexOf(0x0a);
  const head = r.stdout.toString("latin1", 0, nl < 0 ? 0 : nl).trim().split(/\s+/);
  if (nl < 0 || head.length < 6) {
    throw new Error(`unexpected answer from the poll: ${r.stderr.toString().slice(0, 200)}`);
  }
  const [no, ne] = [Number(head[0]), Number(head[1])];
  const body = r.stdout.subarray(nl + 1);
  if (body.length < no + ne) throw new Error("the poll's answer was cut short");
  const status = head[2] === "-" ? undefined : Number(head[2]);
  return {
    out: new Uint8Array(body.subarray(0, no)),
    err: new Uint8Array(body.subarray(no, no + ne)),
    status: Number.isInteger(status) ? status : undefined,
    alive: head[3] === "1",
    more: offsets.out + no < Number(head[4]) || offsets.err + ne < Number(head[5]),
  };
}

/** Runs `script` with `stdin`, collecting all output (for short helper scripts). */
function runScript(
  client: Client,
  script: string,
  stdin: string,
): Promise<{ code: number | null; stdout: Buffer; stderr: Buffer }> {
  return new Promise((resolve, reject) => {
    client.exec(script, (err: Error | undefined, ch: ClientChannel) => {
      if (err) return reject(err);
      const out: Buffer[] = [];
      const errs: Buffer[] = [];
      let code: number | null = null;
      ch.on("data", (d: Buffer) => out.push(d));
      ch.stderr.on("data", (d: Buffer) => errs.push(d));
      ch.on("exit", (c: number | null) => (code = c));
      ch.on(
        "close",
        () => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(errs) }),
      );
      ch.end(stdin);
    });
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** A restored durable job: its record and the output it already holds. */
interface HeldJob {
  durable?: Record<string, unknown> | undefined;
  output: { size(stream: "stdout" | "stderr"): number };
}

/**
 * The `ssh_exec` job kind: durable commands re-attach after a restart through the session
 * named in their record, and forgetting one removes its directory on the server.
 */
export function durableKind(session: (id: string) => { ready(s?: AbortSignal): Promise<Client> }) {
  const sourceOf = (rec: DurableRecord): ClientSource => (signal) =>
    session(rec.session_id).ready(signal);
  const recordOf = (job: { durable?: Record<string, unknown> | undefined }) =>
    job.durable as unknown as DurableRecord | undefined;
  return {
    reattach: (job: HeldJob) => (control: JobControl) => {
      const rec = recordOf(job)!;
      // go on after the bytes this job already holds of each file
      const offsets = { out: job.output.size("stdout"), err: job.output.size("stderr") };
      return followDetached(sourceOf(rec), rec, control, offsets);
    },
    cleanup: async (job: { durable?: Record<string, unknown> | undefined }) => {
      const rec = recordOf(job);
      if (!rec?.dir) return;
      const client = await sourceOf(rec)(AbortSignal.timeout(10_000));
      await removeDetached(client, rec.dir);
    },
  };
}
