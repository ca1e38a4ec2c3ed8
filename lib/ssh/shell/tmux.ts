import type { Client, ClientChannel } from "ssh2";
import { Buffer } from "node:buffer";
import { RsmError } from "../../errors.ts";
import { PtyEvents, type PtyStream } from "../../term/pty.ts";
import { checkEnvNames, shq, sshRun } from "./pty.ts";
import { waitAtMost } from "../../timeout.ts";

/** Options for {@link openTmux}. */
export interface TmuxOptions {
  /** tmux session name (see {@link tmuxName}). */
  name: string;
  rows: number;
  cols: number;
  env?: Record<string, string> | undefined;
  /** Run this instead of the default shell (only when the session is created). */
  command?: string | undefined;
  /** Create the tmux session when missing (false when re-attaching). */
  create: boolean;
  signal?: AbortSignal | undefined;
}

/** A {@link PtyStream} over tmux control mode, plus what durable shells need. */
export interface TmuxStream extends PtyStream {
  /** Ends our tmux client only; the tmux session (and the shell) keep running. */
  detach(): void;
  /** True when the stream ended because the connection went away (not the session). */
  readonly connectionLost: boolean;
  /**
   * Settles once the pane's current screen has been delivered as the first output, so keys
   * typed after it (shell integration) are never painted over by an older copy of the pane.
   */
  readonly seeded: Promise<void>;
}

/** The tmux session name for a shell: `rsm-<session>-<shell>`, safe for tmux targets. */
export function tmuxName(owner: string, shellId: string): string {
  const raw = `${owner}-${shellId}`;
  const safe = raw.replace(/[^A-Za-z0-9_-]/g, "_");
  if (safe === raw) return `rsm-${safe}`;
  let h = 0;
  for (const c of raw) h = (h * 31 + c.codePointAt(0)!) >>> 0;
  return `rsm-${safe}-${h.toString(16)}`;
}

/**
 * Opens (creating if asked) a tmux session on the server and attaches to it in control
 * mode (`tmux -C`) over a plain exec channel. Control mode gives the pane's raw output
 * bytes (`%output`), so `read`/`run`/`screen` work exactly as on a plain PTY, and keys go in
 * byte-exact with `send-keys -H`.
 */
export async function openTmux(client: Client, options: TmuxOptions): Promise<TmuxStream> {
  checkEnvNames(options.env);
  const target = shq(`=${options.name}`);
  const probe = await sshRun(
    client,
    `command -v tmux >/dev/null 2>&1 || exit 127; tmux has-session -t ${target} 2>/dev/null`,
    options.signal,
  );
  if (probe.code === 127) {
    throw new RsmError(
      "NO_TMUX",
      "Cannot open a durable shell: tmux is not installed on the server (command -v tmux " +
        "found nothing); install tmux there, or open the shell without durable: true",
    );
  }
  if (probe.code !== 0) {
    if (!options.create) {
      throw new RsmError(
        "TMUX_GONE",
        `Cannot re-attach: tmux session ${options.name} no longer exists on the server`,
      );
    }
    const envArgs = Object.entries(options.env ?? {}).map(([k, v]) => `-e ${shq(`${k}=${v}`)}`);
    const cmd = options.command !== undefined ? ` ${shq(options.command)}` : "";
    const made = await sshRun(
      client,
      `tmux new-session -d -s ${shq(options.name)} -x ${options.cols} -y ${options.rows} ` +
        `${envArgs.join(" ")}${cmd} && tmux set-option -t ${
          shq(`=${options.name}:`)
        } status off >/dev/null`,
      options.signal,
    );
    if (made.code !== 0) {
      throw new RsmError(
        "TMUX_FAILED",
        `Cannot create tmux session ${options.name}: ${made.stderr.trim() || `exit ${made.code}`}`,
      );
    }
  }
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    client.exec(
      `exec tmux -C attach-session -t ${target}`,
      (err, ch) => err ? reject(err) : resolve(ch),
    );
  });
  const stream = controlStream(channel, options);
  await waitAtMost(stream.seeded, 5000);
  return stream;
}

function controlStream(channel: ClientChannel, options: TmuxOptions): TmuxStream {
  return new TmuxControl(channel, options);
}

/** Our tmux client in control mode (`tmux -C`): commands out, `%`-notifications in. */
class TmuxControl implements TmuxStream {
  readonly seeded: Promise<void>;
  readonly #ev = new PtyEvents();
  readonly #paneTarget: string;
  #sawExit = false;
  #ended = false;
  /** Bytes of an unfinished line. */
  #pending = new Uint8Array(0);
  /** The output lines of the command reply being read (`%begin` … `%end`). */
  #block: { lines: string[] } | undefined;
  /** Replies awaited, in the order the commands were sent. */
  readonly #replies: ((ok: boolean, lines: string[]) => void)[] = [];
  #markSeeded!: () => void;

  constructor(readonly channel: ClientChannel, readonly options: TmuxOptions) {
    this.#paneTarget = shq(`=${options.name}:`);
    this.seeded = new Promise<void>((resolve) => this.#markSeeded = resolve);
    channel.on("data", (b: Uint8Array) => this.#onChunk(b));
    channel.stderr?.on("data", () => {});
    channel.on("error", () => {});
    channel.on("close", () => {
      this.#ended = true;
      for (const r of this.#replies.splice(0)) r(false, []);
      this.#markSeeded();
      this.#ev.exit(null);
    });
    this.#seed();
  }

  get connectionLost(): boolean {
    return this.#ended && !this.#sawExit;
  }

  async write(data: string | Uint8Array): Promise<void> {
    if (this.#ended) throw new RsmError("CLOSED", "the tmux client's channel is closed");
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    for (let i = 0; i < bytes.length; i += 256) {
      const hex = Array.from(bytes.subarray(i, i + 256), (b) => b.toString(16).padStart(2, "0"));
      await this.#send(`send-keys -t ${this.#paneTarget} -H ${hex.join(" ")}`);
    }
  }

  async resize(rows: number, cols: number): Promise<void> {
    await this.#send(`refresh-client -C ${cols}x${rows}`);
  }

  close(): void {
    if (this.#ended) return;
    this.#send(`kill-session -t ${shq(`=${this.options.name}`)}`, () => this.channel.close());
    setTimeout(() => {
      try {
        this.channel.close();
      } catch { /* gone */ }
    }, 2000);
  }

  detach(): void {
    if (this.#ended) return;
    try {
      this.channel.end();
      this.channel.close();
    } catch { /* gone */ }
  }

  onData(cb: (data: Uint8Array) => void): void {
    this.#ev.onData(cb);
  }

  onExit(cb: (code: number | null) => void): void {
    this.#ev.onExit(cb);
  }

  /** Sends one command; `reply` gets its output lines (ok false for `%error` or a closed channel). */
  #send(line: string, reply: (ok: boolean, lines: string[]) => void = () => {}): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.#ended) return resolve();
      this.#replies.push(reply);
      if (this.channel.write(Buffer.from(line + "\n"))) resolve();
      else this.channel.once("drain", () => resolve());
    });
  }

  /** Size, then the current screen, so `screen` and the first read show where the shell is. */
  #seed(): void {
    const { cols, rows } = this.options;
    this.#send(`refresh-client -C ${cols}x${rows}`);
    this.#send(`capture-pane -p -e -t ${this.#paneTarget}`, (ok, lines) => {
      if (!ok) return this.#markSeeded();
      const cursor = `display-message -p -t ${this.#paneTarget} '#{cursor_x} #{cursor_y}'`;
      this.#send(cursor, (ok2, pos) => {
        this.#markSeeded();
        while (lines.length && lines[lines.length - 1] === "") lines.pop();
        const [x = 0, y = lines.length] = ok2
          ? (pos[0] ?? "0 0").split(" ").map(Number)
          : [0, lines.length];
        const seed = `\x1b[H\x1b[2J${lines.join("\r\n")}\x1b[${y + 1};${x + 1}H`;
        this.#ev.data(new TextEncoder().encode(seed));
      });
    });
  }

  #onChunk(b: Uint8Array): void {
    const merged = new Uint8Array(this.#pending.length + b.length);
    merged.set(this.#pending);
    merged.set(b, this.#pending.length);
    let start = 0;
    for (let i = 0; i < merged.length; i++) {
      if (merged[i] === 0x0a) {
        this.#onLine(merged.subarray(start, i));
        start = i + 1;
      }
    }
    this.#pending = merged.slice(start);
  }

  #onLine(line: Uint8Array): void {
    if (line[0] !== 0x25 /* % */) {
      if (this.#block) this.#block.lines.push(new TextDecoder().decode(line));
      return;
    }
    const text = new TextDecoder().decode(line.subarray(0, Math.min(line.length, 64)));
    if (text.startsWith("%output ")) {
      const sp = line.indexOf(0x20, 8);
      if (sp > 0) this.#ev.data(unescapeOutput(line.subarray(sp + 1)));
    } else if (text.startsWith("%begin ")) {
      const flags = Number(text.trim().split(" ")[3] ?? "0");
      this.#block = (flags & 1) ? { lines: [] } : undefined;
    } else if (text.startsWith("%end ") || text.startsWith("%error ")) {
      const flags = Number(text.trim().split(" ")[3] ?? "0");
      if (flags & 1) this.#replies.shift()?.(text.startsWith("%end "), this.#block?.lines ?? []);
      this.#block = undefined;
    } else if (text.startsWith("%exit")) {
      this.#sawExit = true;
    } else if (this.#block) {
      this.#block.lines.push(new TextDecoder().decode(line));
    }
  }
}

/** Decodes tmux's `%output` escaping (`\ooo` octal and `\\`). */
export function unescapeOutput(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  let o = 0;
  // every index read below is checked against src.length first
  const at = (i: number) => src[i] ?? 0;
  for (let i = 0; i < src.length; i++) {
    const b = at(i);
    if (
      b === 0x5c && i + 3 < src.length && isOct(at(i + 1)) && isOct(at(i + 2)) &&
      isOct(at(i + 3))
    ) {
      out[o++] = ((at(i + 1) - 48) << 6) | ((at(i + 2) - 48) << 3) | (at(i + 3) - 48);
      i += 3;
    } else if (b === 0x5c && src[i + 1] === 0x5c) {
      out[o++] = 0x5c;
      i++;
    } else {
      out[o++] = b;
    }
  }
  return out.subarray(0, o);
}

function isOct(b: number | undefined): boolean {
  return b !== undefined && b >= 48 && b <= 55;
}
