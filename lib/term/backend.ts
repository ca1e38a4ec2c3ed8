/**
 * Shell backends: where a shell's terminal comes from (an SSH session, tmux on it, a Docker
 * container, …). The engine ({@link Shell}) and the manager know nothing of them beyond this
 * interface; each backend lives next to its own domain code and is registered once at
 * composition (lib/app.ts). See docs/architecture.md, "Shell backends".
 */
import type { z } from "zod";
import { RsmError } from "../errors.ts";
import type { Subject } from "../policy/mod.ts";
import type { PtyStream } from "./pty.ts";
import type { Shell } from "./shell.ts";

/** What the manager hands a backend for one shell it opens or restores. */
export interface ShellControl {
  /** The engine object; a backend may `attach` a new stream, `detach`, `markLost`, … */
  readonly shell: Shell;
  /** True once the daemon is stopping: do not re-attach anything. */
  readonly stopping: boolean;
  /** Aborted when the daemon is stopping (for waits such as a session coming back). */
  readonly signal: AbortSignal;
  /** The shell's persisted data changed (state.json is written soon). */
  changed(): void;
  /** Drops the shell from the manager (its owner went away); the backend closed it first. */
  remove(): void;
}

/** What a backend returns for a shell it opened or restored. */
export interface BackendShell {
  /** The terminal to attach now; absent while it is re-attached later (`control.shell.attach`). */
  stream?: PtyStream | undefined;
  /** What an end of `stream` means (default: the process exited with that code). */
  onEnd?(code: number | null): void;
  /** Fields this backend adds to {@link ShellInfo} after the owner (e.g. `container`). */
  info?: Record<string, string> | undefined;
  /** What runs, for the audit log (e.g. the command, or "(login shell)"). */
  command?: string | undefined;
  /** The remote process outlives the daemon (tmux): shutdown detaches instead of ending it. */
  durable?: boolean | undefined;
  /** Backend fields to keep in state.json to restore the shell; undefined: do not keep it now. */
  save?(): Record<string, unknown> | undefined;
  /** Shutdown of a durable shell: leave the remote process running. */
  detach?(): void;
  /** The shell left the manager (closed or removed): stop following its owner. */
  release?(): void;
}

/** What {@link ShellBackend.open} gets. */
export interface OpenRequest<O> {
  owner: string;
  id: string;
  rows: number;
  cols: number;
  /** The backend's own options (the open tool's extra fields, validated by its schema). */
  options: O;
  signal?: AbortSignal | undefined;
}

/** Zod pieces the tool layer lends backends for their open tool's extra fields. */
export interface OpenFields {
  /** Environment variables `{NAME: value}`. */
  env(): z.ZodType;
}

/** How a backend's shell tools look (`<kind>_shell_open`, `_write`, … in lib/mcp/shell.ts). */
export interface ShellToolFlavour {
  /** Tool group the tools belong to (a tool profile name: "shell", "docker"). */
  group: string;
  /** The open tool's description, written for a model. */
  openDescription: string;
  /** The open tool's fields besides the owner, `shell_id`, `rows` and `cols`. */
  openInput(fields: OpenFields): Record<string, z.ZodType>;
  /** When served after another backend's tools: "Same as …, <where> (<field> instead of …)". */
  where: string;
  /** Policy target kind (see lib/policy); absent: the policy does not check these shells. */
  policy?: {
    kind: Subject["kind"];
    /** What the open call runs, for the policy (command or argv, user, cwd). */
    open(options: Record<string, unknown>): Omit<Subject, "kind" | "target">;
  };
}

/**
 * One kind of shell. `kind` names the tools (`<kind>_shell_*`) and the console's links;
 * `owner` is what a shell lives on (a session, a Docker host).
 */
export interface ShellBackend<O = Record<string, unknown>> {
  readonly kind: string;
  readonly owner: {
    /** The id field naming the owner in tool input and shell info: "session_id". */
    field: string;
    /** How a person names it: "session", "Docker host". */
    noun: string;
    /** The id field's description: "SSH session id (from ssh_connect)". */
    describe: string;
  };
  readonly tool: ShellToolFlavour;
  /** Whether the engine should install its prompt hooks (false for a non-shell command). */
  integrates(options: O): boolean;
  /** Opens a terminal for a new shell. */
  open(request: OpenRequest<O>, control: ShellControl): Promise<BackendShell>;
  /**
   * Brings back a shell saved by {@link BackendShell.save} (with `owner`, `id`, the size and
   * the saved fields) after a daemon restart. Usually attaches later, in the background.
   */
  restore?(request: OpenRequest<Record<string, unknown>>, control: ShellControl): BackendShell;
}

/**
 * The registered backends, by kind, in registration order (the first one's tools are the ones
 * the others are listed as "same as").
 *
 * @example
 * ```ts ignore
 * // not run as a doc test: needs SSH sessions (see tests/shell_manager_test.ts)
 * const backends = new ShellBackends();
 * backends.register(sshShellBackend({ session: (id) => ssh.get(id) }));
 * backends.get("ssh").kind; // "ssh"
 * ```
 */
export class ShellBackends {
  #byKind = new Map<string, ShellBackend>();

  /** Adds a backend; a second one of the same kind, or a bad kind name, throws. */
  register<O>(backend: ShellBackend<O>): this {
    if (!/^[a-z][a-z0-9]*$/.test(backend.kind)) {
      throw new Error(`Cannot register shell backend "${backend.kind}": kind must be [a-z0-9]+`);
    }
    if (this.#byKind.has(backend.kind)) {
      throw new Error(`Cannot register shell backend "${backend.kind}": already registered`);
    }
    this.#byKind.set(backend.kind, backend as unknown as ShellBackend);
    return this;
  }

  /** Whether `kind` is registered. */
  has(kind: string): boolean {
    return this.#byKind.has(kind);
  }

  /** The backend of `kind`, or an error listing the kinds there are. */
  get(kind: string): ShellBackend {
    const b = this.#byKind.get(kind);
    if (!b) {
      throw new RsmError(
        "NOT_FOUND",
        `Cannot find shell kind "${kind}": not registered; kinds: ${this.kinds().join(", ")}`,
      );
    }
    return b;
  }

  /** Registered kinds, in registration order. */
  kinds(): string[] {
    return [...this.#byKind.keys()];
  }

  /** Registered backends, in registration order. */
  all(): ShellBackend[] {
    return [...this.#byKind.values()];
  }
}
