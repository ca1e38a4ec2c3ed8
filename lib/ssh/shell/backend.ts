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
  tmux?: string;
  /** The ssh2 client a plain shell was opened on. */
  client?: Client;
  reattaching?: boolean;
}

/** The backend of kind "ssh": `ssh_shell_*` tools on SSH sessions. */
export function sshShellBackend(deps: SshShellBackendOptions): ShellBackend<SshShellOptions> {
  const shells = new Set<Tracked>();
  const watched = new Map<string, { session: ShellSession; off: () => void }>();
  const mine = (owner: string) => [...shells].filter((t) => t.owner === owner);

  const attachDurable = (t: Tracked, stream: TmuxStream) => {
    t.control.shell.attach(stream, (code) => onDurableEnd(t, stream, code));
  };
  const onDurableEnd = (t: Tracked, stream: TmuxStream, code: number | null) => {
    if (stream.connectionLost && !t.control.stopping) {
      t.control.shell.detach(); // tmux lives on; re-attach when the session is back
    } else {
      t.control.shell.markExited(code);
      t.control.changed();
    }
  };

  const reattach = async (t: Tracked, session: ShellSession) => {
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
      attachDurable(t, stream);
    } catch (err) {
      if (err instanceof RsmError && err.code === "TMUX_GONE") shell.markExited(null);
      deps.log.warn("durable shell did not re-attach", {
        shell: shell.id,
        session: t.owner,
        error: errorMessage(err),
      });
    } finally {
      t.reattaching = false;
    }
  };

  /** Follows a session's events while it has shells. */
  const watch = (owner: string, session: ShellSession) => {
    const current = watched.get(owner);
    if (current?.session === session) return;
    current?.off();
    const onDown = () => {
      for (const t of mine(owner)) {
        if (t.tmux) t.control.shell.detach();
        else t.control.shell.markLost();
      }
    };
    const onConnected = (client: Client) => {
      for (const t of mine(owner)) {
        if (t.tmux) void reattach(t, session);
        else if (t.client !== client) t.control.shell.markLost();
      }
    };
    const onClosed = () => {
      for (const t of mine(owner)) {
        if (t.tmux) (t.control.shell.detach() as TmuxStream | undefined)?.detach();
        t.control.shell.close();
        t.control.remove();
        t.control.changed();
      }
      unwatch(owner);
    };
    session.on("down", onDown);
    session.on("connected", onConnected);
    session.on("closed", onClosed);
    watched.set(owner, {
      session,
      off: () => {
        session.off("down", onDown);
        session.off("connected", onConnected);
        session.off("closed", onClosed);
      },
    });
  };
  const unwatch = (owner: string) => {
    watched.get(owner)?.off();
    watched.delete(owner);
  };

  /** The per-shell handle the manager keeps. */
  const handle = (t: Tracked, command: string | undefined): BackendShell => ({
    command: command ?? "(login shell)",
    durable: t.tmux !== undefined,
    save: () => {
      if (!t.tmux) return undefined;
      // only sessions that come back after a restart can re-attach their shells
      try {
        if (deps.session(t.owner).persistent !== true) return undefined;
      } catch {
        return undefined;
      }
      return { session_id: t.owner, tmux: t.tmux };
    },
    detach: () => {
      (t.control.shell.detach() as TmuxStream | undefined)?.detach();
    },
    release: () => {
      shells.delete(t);
      if (mine(t.owner).length === 0) unwatch(t.owner);
    },
  });

  return {
    kind: "ssh",
    owner: {
      field: "session_id",
      noun: "session",
      describe: "SSH session id (from ssh_connect)",
    },
    tool: {
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
    },
    integrates: (o) => o.command === undefined || looksLikeShell(o.command),
    async open({ owner, id, rows, cols, options, signal }, control) {
      const session = deps.session(owner);
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
          ...handle(t, options.command),
          stream,
          onEnd: (code) => onDurableEnd(t, stream, code),
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
        result = { ...handle(t, options.command), stream };
      }
      shells.add(t);
      watch(owner, session);
      return result;
    },
    restore({ owner, id, options }, control) {
      const tmux = typeof options.tmux === "string" ? options.tmux : tmuxName(owner, id);
      const t: Tracked = { control, owner, tmux };
      let session: ShellSession;
      try {
        session = deps.session(owner);
      } catch (err) {
        // the session did not come back (not persistent): keep the record visible as lost
        control.shell.lost = true;
        control.shell.markExited(null);
        deps.log.warn("durable shell's session is gone", {
          shell: id,
          session: owner,
          error: errorMessage(err),
        });
        return handle(t, undefined);
      }
      shells.add(t);
      watch(owner, session);
      void reattach(t, session).catch(() => {});
      return handle(t, undefined);
    },
  };
}
