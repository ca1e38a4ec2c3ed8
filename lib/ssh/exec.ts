/**
 * Runs one command over an SSH connection (README "SSH sessions and exec") and stops it for real on timeout or
 * cancel.
 *
 * How stopping works: sshd starts the command's shell with `setsid()`, so the shell's pid is
 * also its process group id. The wrapper prints `$$` (behind a random marker, stripped from
 * the output) before running the command. To stop, a second channel on the same connection
 * sends TERM to the whole group, waits, sends KILL after 2 s, and verifies with `kill -0` that
 * nothing of the group is left. (ssh2's `signal()` is unreliable: it is dropped once stdin
 * has been ended.) Env vars are exported by the wrapper (sshd rejects most `env` requests);
 * the sudo password goes to `sudo -S` on stdin, never on a command line.
 * Needs a POSIX-style login shell on the server (sh, bash, dash, zsh, ksh).
 */
import type { Client, ClientChannel } from "ssh2";
import { Buffer } from "node:buffer";
import { RsmError } from "../errors.ts";
import { Capture, type ExecOutcome } from "../output/mod.ts";
import { gateOf, isChannelRefused } from "./channels.ts";
import { waitAtMost } from "../timeout.ts";
import { randomHex } from "../random.ts";

/** Options for {@link execCommand}. */
export interface ExecOptions {
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
  stdin?: string | undefined;
  /** Stop the command after this long. */
  timeoutMs: number;
  /** Allocate a PTY (stderr then arrives merged into stdout). */
  pty?: boolean | undefined;
  /** Run through `sudo -S`; `sudoPassword` is written to its stdin. */
  sudo?: boolean | undefined;
  sudoPassword?: string | undefined;
  /** Cancels the command (it is stopped like on timeout). */
  signal?: AbortSignal | undefined;
  /** Bytes kept in memory per stream (head and tail each) when no sinks are given. */
  keepBytes?: number | undefined;
  /** Where stdout goes (e.g. a {@link Capture} that spills to the output store). */
  stdout?: Capture | undefined;
  /** Where stderr goes. */
  stderr?: Capture | undefined;
  /** Sees every chunk of output as it arrives (a job keeps it all). */
  onOutput?: ((stream: "stdout" | "stderr", chunk: Uint8Array) => void) | undefined;
  /** Called once the command's process group is known, with a way to signal it. */
  onStarted?: ((signal: (name: string) => Promise<string>) => void) | undefined;
}

/** What {@link execCommand} returns: the exec outcome Docker's exec returns too. */
export type ExecResult = ExecOutcome;

/** Quotes `s` for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Builds the remote command line; exported for tests. */
export function wrapCommand(
  command: string,
  options: Pick<ExecOptions, "env" | "cwd" | "sudo" | "sudoPassword">,
  marker: string,
): string {
  const body: string[] = [];
  if (options.cwd) body.push(`cd -- ${shellQuote(options.cwd)} || exit 126`);
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) {
      throw new RsmError("BAD_ARGUMENT", `Cannot set env var "${k}": not a valid variable name`);
    }
    body.push(`export ${k}=${shellQuote(v)}`);
  }
  const pre = `printf '${marker}%s\\n' "$$" >&2`;
  if (options.sudo) {
    const inner = [...body, command].join("\n");
    // with a password: -S reads it from stdin, -k ignores cached credentials so sudo always
    // reads it (never leaving it for the command); without one: -n fails instead of prompting
    const flags = options.sudoPassword !== undefined ? "-S -k -p ''" : "-n";
    return `${pre}; sudo ${flags} -- sh -c ${shellQuote(inner)}`;
  }
  return [pre, ...body, `eval ${shellQuote(command)}`].join("\n");
}

/** Exit status of exec channels, recorded from the moment the channel exists. */
const exits = new WeakMap<ClientChannel, { code: number | null; sig?: string | undefined }>();

async function openExec(
  client: Client,
  cmd: string,
  pty: boolean,
  signal?: AbortSignal,
): Promise<ClientChannel> {
  const gate = gateOf(client);
  while (true) {
    const slot = await gate.acquire(signal);
    try {
      const ch = await openChannel(client, cmd, pty);
      gate.opened();
      ch.once("close", () => gate.closed());
      return ch;
    } catch (err) {
      gate.failed();
      // over the server's MaxSessions: wait for a channel to close, then retry
      if (!isChannelRefused(err) || !await gate.refused(slot, signal)) throw err;
    }
  }
}

/** Opens the kill helper's channel outside the gate, retrying briefly if the server is full. */
async function openKillChannel(client: Client, cmd: string): Promise<ClientChannel> {
  for (let attempt = 0;; attempt++) {
    try {
      return await openChannel(client, cmd, false);
    } catch (err) {
      if (!isChannelRefused(err) || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function openChannel(
  client: Client,
  cmd: string,
  pty: boolean,
): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      client.exec(cmd, pty ? { pty: { term: "xterm", rows: 24, cols: 200 } } : {}, (err, ch) => {
        if (err) reject(new RsmError("EXEC_FAILED", `Cannot start the command: ${err.message}`));
        else {
          // Listen now: under load the exit status can arrive in the same batch of packets as
          // this reply, before the caller's `await` resumes (the exit code was then lost).
          ch.on("exit", (code: number | null, sig?: string) => {
            exits.set(ch, { code, sig });
          });
          resolve(ch);
        }
      });
    } catch (err) {
      reject(
        new RsmError(
          "EXEC_FAILED",
          `Cannot start the command: ${err instanceof Error ? err.message : err}`,
        ),
      );
    }
  });
}

/**
 * Kills process group `pgid` through a second channel and verifies it is gone.
 * Returns `stopped` or a description of what is left.
 */
export async function killGroup(client: Client, pgid: number): Promise<string> {
  const script = [
    ...aliveScript(pgid),
    `kill -TERM -$pg 2>/dev/null || { echo stopped; exit 0; }`,
    `i=0`,
    `while alive; do`,
    `  i=$((i+1))`,
    `  if [ $i -ge 20 ]; then kill -KILL -$pg 2>/dev/null; fi`,
    `  if [ $i -ge 50 ]; then echo "still running: process group $pg"; exit 1; fi`,
    `  sleep 0.1`,
    `done`,
    `echo stopped`,
  ].join("\n");
  return await runHelper(client, script);
}

/**
 * A shell function `alive` that tells whether process group `pgid` has a live member.
 * It ignores zombies: an init that does not reap would otherwise keep the group "alive"
 * forever (Linux: /proc; elsewhere: kill -0).
 */
function aliveScript(pgid: number): string[] {
  return [
    `pg=${pgid}`,
    `alive() {`,
    `  if [ -r /proc/self/stat ]; then`,
    `    for f in /proc/[0-9]*/stat; do`,
    `      read -r l 2>/dev/null < "$f" || continue`,
    `      set -- \${l##*) }`,
    `      [ "$1" != Z ] && [ "$3" = "$pg" ] && return 0`,
    `    done`,
    `    return 1`,
    `  fi`,
    `  kill -0 -$pg 2>/dev/null`,
    `}`,
  ];
}

/**
 * Sends `signal` (TERM, INT, HUP, KILL…) to process group `pgid` through a second channel.
 * Returns `stopped` once nothing of the group is left (for KILL verified for up to 5 s,
 * otherwise checked for 2 s), `sent` when the group still runs after another signal, or
 * what went wrong.
 */
export async function signalGroup(client: Client, pgid: number, signal: string): Promise<string> {
  const sig = signal.toUpperCase().replace(/^SIG/, "");
  if (!/^([A-Z][A-Z0-9+-]*|\d+)$/.test(sig)) {
    throw new RsmError("BAD_ARGUMENT", `Cannot send signal ${signal}: not a signal name`);
  }
  const ticks = sig === "KILL" || sig === "9" ? 50 : 20;
  const script = [
    ...aliveScript(pgid),
    `kill -${sig} -$pg 2>/dev/null || { alive && echo "cannot signal process group $pg" || echo stopped; exit 0; }`,
    `i=0`,
    `while alive; do`,
    `  i=$((i+1))`,
    `  if [ $i -ge ${ticks} ]; then echo ${
      ticks === 50 ? '"still running: process group $pg"' : "sent"
    }; exit 0; fi`,
    `  sleep 0.1`,
    `done`,
    `echo stopped`,
  ].join("\n");
  return await runHelper(client, script);
}

/** Runs a helper script on its own channel (outside the session gate); returns its stdout. */
async function runHelper(client: Client, script: string): Promise<string> {
  const ch = await openKillChannel(client, script);
  let out = "";
  ch.on("data", (d: Buffer) => (out += d.toString()));
  ch.stderr.on("data", () => {});
  ch.end();
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 10_000);
    ch.on("close", () => {
      clearTimeout(t);
      resolve();
    });
  });
  return out.trim() || "unknown (no answer from the kill helper)";
}

/** Runs `command` on `client`; a non-zero exit is a result, not an error. */
export async function execCommand(
  client: Client,
  command: string,
  options: ExecOptions,
): Promise<ExecResult> {
  const marker = `RSMPG${randomHex(6)}:`;
  const wrapped = wrapCommand(command, options, marker);
  if (wrapped.includes("\0")) {
    // OpenSSH drops the whole connection (every shell and forward on it) for a NUL here.
    throw new RsmError(
      "BAD_ARGUMENT",
      "Cannot run the command: it, its env or its cwd contains a NUL character (\\0), which " +
        "SSH cannot carry; remove it",
    );
  }
  const started = Date.now();
  options.signal?.throwIfAborted();
  const ch = await openWithinTimeout(client, wrapped, options);
  const run = new RunningCommand(client, ch, marker, options);
  await run.finished();
  return run.result(Date.now() - started);
}

/** Opens the exec channel, waiting for a free one (MaxSessions) no longer than the timeout. */
async function openWithinTimeout(
  client: Client,
  wrapped: string,
  options: ExecOptions,
): Promise<ClientChannel> {
  const queueLimit = AbortSignal.timeout(options.timeoutMs);
  try {
    return await openExec(
      client,
      wrapped,
      !!options.pty,
      options.signal ? AbortSignal.any([options.signal, queueLimit]) : queueLimit,
    );
  } catch (err) {
    if (!queueLimit.aborted || options.signal?.aborted) throw err;
    throw new RsmError(
      "EXEC_FAILED",
      `Cannot start the command: the server allows no more sessions on this connection ` +
        `(sshd MaxSessions; ${gateOf(client).open} commands are running) and none ended within ` +
        `timeout_ms; wait for them, raise MaxSessions, or open a second connection with ssh_clone`,
    );
  }
}

/**
 * One started command: its output (with the process-group marker taken out), its exit status,
 * and its stop on timeout or cancel.
 */
class RunningCommand {
  readonly stdout: Capture;
  readonly stderr: Capture;
  /** The stream the wrapper prints the marker on (stdout under a PTY, which merges them). */
  readonly #markerSink: Capture;
  #pgid: number | undefined;
  #pgidWaiters: (() => void)[] = [];
  /** Marker-stream bytes seen before the marker; undefined once it has been taken out. */
  #pending: Buffer | undefined = Buffer.alloc(0);
  #exitCode: number | null = null;
  #exitSignal: string | undefined;
  #timedOut = false;
  #cancelled = false;
  #stopResult: string | undefined;
  #stopping: Promise<void> | undefined;
  readonly #closed: Promise<void>;

  constructor(
    readonly client: Client,
    readonly ch: ClientChannel,
    readonly marker: string,
    readonly options: ExecOptions,
  ) {
    this.stdout = options.stdout ?? new Capture({ keep: options.keepBytes });
    this.stderr = options.stderr ?? new Capture({ keep: options.keepBytes });
    this.#markerSink = options.pty ? this.stdout : this.stderr;
    ch.on("data", (d: Buffer) => this.#feed(this.stdout, d));
    ch.stderr.on("data", (d: Buffer) => this.#feed(this.stderr, d));
    const early = exits.get(ch);
    if (early) this.#onExit(early.code, early.sig);
    else ch.on("exit", (code: number | null, sig?: string) => this.#onExit(code, sig));
    this.#closed = new Promise<void>((resolve) => ch.on("close", () => resolve()));
    this.#sendInput();
  }

  /** Waits for the channel to close (on its own, or after a stop on timeout or cancel). */
  async finished(): Promise<void> {
    const { options, client, ch } = this;
    const timer = setTimeout(() => {
      this.#timedOut = true;
      this.#stop();
    }, options.timeoutMs);
    const onAbort = () => {
      this.#cancelled = true;
      this.#stop();
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const onClientClose = () => ch.close();
    client.once("close", onClientClose);
    try {
      await this.#closed;
      if (this.#stopping) {
        // the channel closed because of the stop: wait for the helper to finish verifying
        await waitAtMost(this.#stopping, 12_000);
      }
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      client.off("close", onClientClose);
    }
    if (this.#pending?.length) this.#emit(this.#markerSink, this.#pending);
    await Promise.all([this.stdout.end(), this.stderr.end()]);
  }

  result(durationMs: number): ExecResult {
    return {
      exit_code: this.#exitCode,
      signal: this.#exitSignal,
      stdout: this.stdout,
      stderr: this.stderr,
      timed_out: this.#timedOut || this.#cancelled,
      duration_ms: durationMs,
      stop_result: this.#stopResult,
    };
  }

  /** stdin (after a sudo password, which `sudo -S` reads first); EOF unless a PTY waits for input. */
  #sendInput(): void {
    const { options, ch } = this;
    const input: string[] = [];
    if (options.sudo && options.sudoPassword !== undefined) input.push(`${options.sudoPassword}\n`);
    if (options.stdin !== undefined) input.push(options.stdin);
    if (input.length) ch.write(input.join(""));
    if (!options.pty || options.stdin !== undefined) ch.end();
  }

  #onExit(code: number | null, sig?: string): void {
    if (typeof code === "number") this.#exitCode = code;
    if (sig) this.#exitSignal = sig.startsWith("SIG") ? sig : `SIG${sig}`;
  }

  #emit(sink: Capture, chunk: Buffer): void {
    sink.push(chunk);
    this.options.onOutput?.(sink === this.stdout ? "stdout" : "stderr", chunk);
  }

  /** Passes output on; on the marker stream, first takes out the marker line with the pgid. */
  #feed(sink: Capture, chunk: Buffer): void {
    if (sink === this.#markerSink && this.#pending) {
      const taken = this.#takeMarker(chunk);
      if (!taken) return;
      chunk = taken;
    }
    if (chunk.length) this.#emit(sink, chunk);
  }

  /** Buffers marker-stream bytes until the marker line is complete; returns what to pass on. */
  #takeMarker(chunk: Buffer): Buffer | undefined {
    const pending = Buffer.concat([this.#pending!, chunk]);
    const idx = pending.indexOf(this.marker);
    if (idx < 0) {
      if (pending.length <= 4096) {
        this.#pending = pending;
        return undefined;
      }
      this.#pending = undefined; // no marker coming (sudo failed early?): pass everything on
      return pending;
    }
    const nl = pending.indexOf(0x0a, idx);
    if (nl < 0) {
      this.#pending = pending;
      return undefined;
    }
    const pgid = Number(pending.toString("latin1", idx + this.marker.length, nl).replace("\r", ""));
    this.#pgid = pgid;
    if (Number.isInteger(pgid) && pgid > 1) {
      this.options.onStarted?.((name) => signalGroup(this.client, pgid, name));
    }
    for (const w of this.#pgidWaiters) w();
    this.#pgidWaiters = [];
    this.#pending = undefined;
    return Buffer.concat([pending.subarray(0, idx), pending.subarray(nl + 1)]);
  }

  /** Stops the command's process group (once): TERM, KILL, verified by the kill helper. */
  #stop(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#pgid === undefined) await this.#pgidKnown(2000);
      const pgid = this.#pgid;
      if (pgid !== undefined && Number.isInteger(pgid) && pgid > 1) {
        try {
          this.#stopResult = await killGroup(this.client, pgid);
        } catch (err) {
          this.#stopResult = `cannot run the kill helper: ${
            err instanceof Error ? err.message : err
          }`;
        }
      } else this.#stopResult = "process group unknown; sent KILL to the channel";
      try {
        this.ch.signal("KILL");
      } catch { /* channel gone */ }
      this.ch.close();
    })();
    return this.#stopping;
  }

  /** Waits up to `ms` for the marker (a stop right after the start may come before it). */
  #pgidKnown(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      this.#pgidWaiters.push(() => {
        clearTimeout(t);
        r();
      });
    });
  }
}
