/**
 * An `http.Agent` whose connections are SSH channels to a remote Unix socket
 * (`direct-streamlocal@openssh.com`), so dockerode talks to a remote engine through an SSH
 * connection: our own (`ssh://`) or an existing session's (`ssh_session`).
 */
import http from "node:http";
import type { Duplex } from "node:stream";

/** The part of an ssh2 `Client` we need. */
export interface SshClientLike {
  openssh_forwardOutStreamLocal(
    socketPath: string,
    cb: (err: Error | undefined, channel: Duplex) => void,
  ): unknown;
}

/** Gives the client to use for the next connection and the remote socket path. */
export type ChannelTarget = () => Promise<{ client: SshClientLike; socketPath: string }>;

/** Opens one channel to `socketPath`. */
export function openChannel(client: SshClientLike, socketPath: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    try {
      client.openssh_forwardOutStreamLocal(socketPath, (err, ch) => {
        if (err) {
          reject(
            new Error(
              `SSH channel to ${socketPath} refused: ${err.message}; the socket must exist on the remote side and sshd must allow stream-local forwarding (AllowStreamLocalForwarding)`,
            ),
          );
        } else resolve(socketShims(ch));
      });
    } catch (err) {
      reject(err);
    }
  });
}

/** Adds the socket methods node:http calls on its connections (no-ops for an SSH channel). */
function socketShims(ch: Duplex): Duplex {
  const s = ch as Duplex & Record<string, unknown>;
  for (const name of ["setNoDelay", "setKeepAlive", "ref", "unref"]) {
    if (typeof s[name] !== "function") s[name] = () => s;
  }
  if (typeof s.setTimeout !== "function") s.setTimeout = () => s;
  return ch;
}

/** An http.Agent that opens SSH stream-local channels instead of sockets. */
export class ForwardAgent extends http.Agent {
  #target: ChannelTarget;

  constructor(target: ChannelTarget) {
    super({ keepAlive: false });
    this.#target = target;
  }

  /** Called by node:http for every new connection. */
  override createConnection(
    _options: unknown,
    cb?: (err: Error | null, socket: Duplex) => void,
  ): undefined {
    this.#target()
      .then(({ client, socketPath }) => openChannel(client, socketPath))
      .then(
        (ch) => cb?.(null, ch),
        (err) => cb?.(err instanceof Error ? err : new Error(String(err)), undefined as never),
      );
    return undefined;
  }
}
