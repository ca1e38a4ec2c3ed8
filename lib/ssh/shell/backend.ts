/**
 * The SSH shell backend: PTY shells on an SSH session, plain (an ssh2 channel) or durable (a
 * tmux session on the server, re-attached after reconnects and daemon restarts). It follows
 * each session's events: a plain shell is lost with its connection, a durable one detaches
 * and re-attaches. Registered at composition (lib/app.ts); see docs/architecture.md.
 */
import type { Client } from "ssh2";
import { z } from "zod";
import { errorMessage, RsmError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { SshSession } from "../session.ts";
import {
  type BackendShell,
  looksLikeShell,
  type OpenRequest,
  type ShellBackend,
  type ShellControl,
} from "../../term/mod.ts";
import { openSshPty } from "./pty.ts";
import { openTmux, tmuxName, type TmuxStream } from "./tmux.ts";

/** The slice of an SSH session the shells use ({@link SshSession}). */
export type ShellSession = Pick<SshSession, "client" | "ready" | "on" | "off" | "persistent">;

/** What the SSH backend needs: a session by id (throws NOT_FOUND), and a log. */
export interface SshShellBackendOptions {
  session(id: string): ShellSession;
  log: Pick<Logger, "warn">;
}

/** The options of `ssh_shell_open` (besides session, id and size). */
export interface SshShellOptions {
  term?: string | undefined;
  command?: string | undefined;
  env?: Record<string, string> | undefined;
  durable?: boolean | undefined;
}

/** One SSH shell, as the backend follows it. */
interface Tracked {
  control: ShellControl;
  owner: string;
  /** tmux session name, for durable shells. */
  tmux?: string | undefined;
  /** The ssh2 client a plain shell was opened on. */
  client?: Client | undefined;
  reattaching?: boolean | undefined;
}

/** The backend of kind "ssh": `ssh_shell_*` tools on SSH sessions. */
export function sshShellBackend(deps: SshShellBackendOptions): ShellBackend<SshShellOptions> {
  return new SshShells(deps);
}

/** The tool side of the SSH backend: owner field, descriptions, open options, policy. */
const SSH_SHELL_TOOL: ShellBackend<SshShellOptions>["tool"] = {
  group: "shell",
  where: "on an SSH session",
  openDescription: "Opens a PTY shell on an SSH session; its state (cwd, env, functions) " +
    "persists. Then: ssh_shell_run for exact output and exit code; ssh_shell_write (with " +
    "wait_until) for interactive programs; ssh_shell_screen for full-screen ones. " +
    "durable: true keeps it in tmux on the server (survives reconnects and restarts).",
  openInput: (f) => ({
    term: z.string().min(1).max(100).optional().describe("TERM (default xterm-256color)"),
    command: z.string().min(1).max(100_000).optional().describe(
      "run this instead of the login shell; the shell closes when it exits",
    ),
    env: f.env().optional(),
    durable: z.boolean().optional().describe(
      "keep the shell in a tmux session on the server (survives reconnects and restarts)",
    ),
  }),
  policy: {
    kind: "ssh",
    open: (o) => ({ command: o.command as string | undefined }),
  },
};

/** The SSH backend's shells, and the session events it follows for them. */
class SshShells implements ShellBackend<SshShellOptions> {
  readonly kind = "ssh";
  readonly owner = {
    field: "session_id",
    noun: "session",
    describe: "SSH session id (from ssh_connect)",
  };
  readonly tool = SSH_SHELL_TOOL;
  readonly #deps: SshShellBackendOptions;
  readonly #shells = new Set<Tracked>();
  readonly #watched = new Map<string, { session: ShellSession; off: () => void }>();

  constructor(deps: SshShellBackendOptions) {
    this.#deps = deps;
  }

  integrates(o: SshShellOptions): boolean {
    return o.command === undefined || looksLikeShell(o.command);
  }

  async open(
    { owner, id, rows, cols, options, signal }: Parameters<
      ShellBackend<SshShellOptions>["open"]
    >[0],
    control: ShellControl,
  ): Promise<BackendShell> {
    const session = this.#deps.session(owner);
    const client = session.client();
    let t: Tracked;
    let result: BackendShell;
    if (options.durable) {
      const name = tmuxName(owner, id);
      const stream = await openTmux(client, {
        name,
        rows,
        cols,
        env: options.env,
        command: options.command,
        create: true,
        signal,
      });
      t = { control, owner, tmux: name };
      result = {
        ...this.#handle(t, options.command),
        stream,
        onEnd: (code) => this.#onDurableEnd(t, stream, code),
      };
    } else {
      const stream = await openSshPty(client, {
        rows,
        cols,
        term: options.term,
        env: options.env,
        command: options.command,
        signal,
      });
      t = { control, owner, client };
      result = { ...this.#handle(t, options.command), stream };
    }
    this.#shells.add(t);
    this.#watch(owner, session);
    return result;
  }

  restore(
    { owner, id, options }: OpenRequest<Record<string, unknown>>,
    control: ShellControl,
  ): BackendShell {
    const tmux = typeof options.tmux === "string" ? options.tmux : tmuxName(owner, id);
    const t: Tracked = { control, owner, tmux };
    let session: ShellSession;
    try {
      session = this.#deps.session(owner);
    } catch (err) {
      // the session did not come back (not persistent): keep the record visible as lost
      control.shell.lost = true;
      control.shell.markExited(null);
      this.#deps.log.warn("durable shell's session is gone", {
        shell: id,
        session: owner,
        error: errorMessage(err),
      });
      return this.#handle(t, undefined);
    }
    this.#shells.add(t);
    this.#watch(owner, session);
    void this.#reattach(t, session).catch(() => {});
    return this.#handle(t, undefined);
  }

  #mine(owner: string): Tracked[] {
    return [...this.#shells].filter((t) => t.owner === owner);
  }

  #attachDurable(t: Tracked, stream: TmuxStream): void {
    t.control.shell.attach(stream, (code) => this.#onDurableEnd(t, stream, code));
  }

  #onDurableEnd(t: Tracked, stream: TmuxStream, code: number | null): void {
    if (stream.connectionLost && !t.control.stopping) {
      t.control.shell.detach(); // tmux lives on; re-attach when the session is back
    } else {
      t.control.shell.markExited(code);
      t.control.changed();
    }
  }

  async #reattach(t: Tracked, session: ShellSession): Promise<void> {
    const shell = t.control.shell;
    if (t.reattaching || shell.closed || shell.attached) return;
    t.reattaching = true;
    try {
      await session.ready(t.control.signal);
      if (t.control.stopping || shell.closed) return;
      const stream = await openTmux(session.client(), {
        name: t.tmux!,
        rows: shell.rows,
        cols: shell.cols,
        create: false,
        signal: t.control.signal,
      });
      if (t.control.stopping || shell.closed) return stream.detach();
      this.#attachDurable(t, stream);
    } catch (err) {
      if (err instanceof RsmError && err.code === "TMUX_GONE") shell.markExited(null);
      this.#deps.log.warn("durable shell did not re-attach", {
        shell: shell.id,
        session: t.owner,
        error: errorMessage(err),
      });
    } finally {
      t.reattaching = false;
    }
  }

  /** Follows a session's events while it has shells. */
  #watch(owner: string, session: ShellSession): void {
    const current = this.#watched.get(owner);
    if (current?.session === session) return;
    current?.off();
    const onDown = () => {
      for (const t of this.#mine(owner)) {
        if (t.tmux) t.control.shell.detach();
        else t.control.shell.markLost();
      }
    };
    const onConnected = (client: Client) => {
      for (const t of this.#mine(owner)) {
        if (t.tmux) void this.#reattach(t, session);
        else if (t.client !== client) t.control.shell.markLost();
      }
    };
    const onClosed = () => {
      for (const t of this.#mine(owner)) {
        if (t.tmux) (t.control.shell.detach() as TmuxStream | undefined)?.detach();
        t.control.shell.close();
        t.control.remove();
        t.control.changed();
      }
      this.#unwatch(owner);
    };
    session.on("down", onDown);
    session.on("connected", onConnected);
    session.on("closed", onClosed);
    this.#watched.set(owner, {
      session,
      off: () => {
        session.off("down", onDown);
        session.off("connected", onConnected);
        session.off("closed", onClosed);
      },
    });
  }

  #unwatch(owner: string): void {
    this.#watched.get(owner)?.off();
    this.#watched.delete(owner);
  }

  /** The per-shell handle the manager keeps. */
  #handle(t: Tracked, command: string | undefined): BackendShell {
    return {
      command: command ?? "(login shell)",
      durable: t.tmux !== undefined,
      save: () => {
        if (!t.tmux) return undefined;
        // only sessions that come back after a restart can re-attach their shells
        try {
          if (this.#deps.session(t.owner).persistent !== true) return undefined;
        } catch {
          return undefined;
        }
        return { session_id: t.owner, tmux: t.tmux };
      },
      detach: () => {
        (t.control.shell.detach() as TmuxStream | undefined)?.detach();
      },
      release: () => {
        this.#shells.delete(t);
        if (this.#mine(t.owner).length === 0) this.#unwatch(t.owner);
      },
    };
  }
}
