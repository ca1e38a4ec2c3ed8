/**
 * Every code an {@linkcode RsmError} can carry: one closed list, so a new code is a deliberate
 * change here and a typo fails `deno check`. One line each: what happened.
 */
export type ErrorCode =
  /** An object with that id or path exists (session, forward, shell, Docker host, file). */
  | "ALREADY_EXISTS"
  /** The person declined the approval the policy asked for. */
  | "APPROVAL_DECLINED"
  /** The policy needs a person's approval before this call runs. */
  | "APPROVAL_NEEDED"
  /** The SSH server refused every authentication method tried. */
  | "AUTH_FAILED"
  /** An SSH address is not host, host:port, [v6]:port or an ssh_config alias. */
  | "BAD_ADDRESS"
  /** An argument is malformed, out of range, or not allowed with the others. */
  | "BAD_ARGUMENT"
  /** The current docker context cannot be read. */
  | "BAD_CONTEXT"
  /** A Docker host URL cannot be used (scheme, socket path, host name). */
  | "BAD_HOST"
  /** A file mode is not an octal permission string. */
  | "BAD_MODE"
  /** A pattern is not a valid regular expression. */
  | "BAD_REGEX"
  /** A session spec is incomplete or contradictory. */
  | "BAD_SPEC"
  /** A Docker TLS certificate or key cannot be read. */
  | "BAD_TLS"
  /** A text read met binary content. */
  | "BINARY_FILE"
  /** The session, shell, forward or Docker host was closed or lost; open it again. */
  | "CLOSED"
  /** An MCP client's configuration file is not valid JSON(C) or TOML. */
  | "CONFIG_PARSE"
  /** An MCP client's configuration file parses but has an unexpected shape. */
  | "CONFIG_SHAPE"
  /** The Docker engine refused because of the object's state (HTTP 409). */
  | "CONFLICT"
  /** The SSH connection dropped during the call. */
  | "CONNECTION_LOST"
  /** No address of the host, jump host or proxy command could be reached. */
  | "CONNECT_FAILED"
  /** A forward's target did not answer in time. */
  | "DIAL_TIMEOUT"
  /** A Docker call failed neither by the engine's answer nor by the transport. */
  | "DOCKER_ERROR"
  /** The Docker engine cannot be reached (socket, TCP, TLS or SSH). */
  | "DOCKER_UNREACHABLE"
  /** The Docker engine failed (HTTP 500 or a status without a code of its own). */
  | "ENGINE_ERROR"
  /** The remote command could not be started. */
  | "EXEC_FAILED"
  /** The Docker engine forbade the call (HTTP 403). */
  | "FORBIDDEN"
  /** The SSH server would not listen for a remote forward. */
  | "FORWARD_FAILED"
  /** A host certificate is malformed, expired or for another name. */
  | "HOST_CERT_INVALID"
  /** A host certificate is signed by no trusted @cert-authority. */
  | "HOST_CERT_UNTRUSTED"
  /** The host key differs from the one in known_hosts. */
  | "HOST_KEY_CHANGED"
  /** The host key is marked @revoked in known_hosts. */
  | "HOST_KEY_REVOKED"
  /** The host key is not in known_hosts and the policy does not accept new keys. */
  | "HOST_KEY_UNKNOWN"
  /** A file was expected and the path is a directory. */
  | "IS_A_DIRECTORY"
  /** A running job cannot be forgotten. */
  | "JOB_RUNNING"
  /** A local listener could not be opened (other than a port in use). */
  | "LISTEN_FAILED"
  /** A local file could not be read. */
  | "LOCAL_READ_FAILED"
  /** A local file could not be written. */
  | "LOCAL_WRITE_FAILED"
  /** A forward would serve other machines without allow_remote_clients. */
  | "NOT_ALLOWED"
  /** A directory was expected and the path is not one. */
  | "NOT_A_DIRECTORY"
  /** The session is not connected at the moment (it may be reconnecting). */
  | "NOT_CONNECTED"
  /** A directory to remove is not empty. */
  | "NOT_EMPTY"
  /** No such session, shell, forward, job, host, image, kind or file. */
  | "NOT_FOUND"
  /** No healthy rsm daemon answers, and spawning one was not allowed. */
  | "NO_DAEMON"
  /** tmux is not installed on the server. */
  | "NO_TMUX"
  /** The remote user lacks the rights for a file operation. */
  | "PERMISSION_DENIED"
  /** A person is typing in the shell from the console. */
  | "PERSON_TYPING"
  /** The policy forbids this call. */
  | "POLICY_DENIED"
  /** ssh_config names a ProxyCommand and running local programs is off. */
  | "PROXY_COMMAND_DISABLED"
  /** A local port to listen on is in use. */
  | "PORT_IN_USE"
  /** An image could not be pulled. */
  | "PULL_FAILED"
  /** The person declined to type a secret. */
  | "SECRET_DECLINED"
  /** A secret from a person is needed; the tool layer asks and tries again. */
  | "SECRET_NEEDED"
  /** Nobody typed the secret in time. */
  | "SECRET_TIMEOUT"
  /** A referenced secret (file, env var, key) cannot be read. */
  | "SECRET_UNAVAILABLE"
  /** An SFTP call failed for another reason. */
  | "SFTP_FAILED"
  /** A full-screen program holds the shell. */
  | "SHELL_BUSY"
  /** A durable shell is re-attaching to its tmux session. */
  | "SHELL_DETACHED"
  /** The shell ended during a command, whose outcome is unknown. */
  | "SHELL_ENDED"
  /** The shell is not a POSIX shell, so marker-delimited runs do not work. */
  | "SHELL_NOT_POSIX"
  /** The server would not open a shell. */
  | "SHELL_OPEN_FAILED"
  /** The daemon is shutting down and takes no new work. */
  | "SHUTTING_DOWN"
  /** An ssh_config file cannot be read. */
  | "SSH_CONFIG"
  /** A tmux command on the server failed. */
  | "TMUX_FAILED"
  /** A durable shell's tmux session no longer exists. */
  | "TMUX_GONE"
  /** A file transfer failed part-way; nothing was left under the final name. */
  | "TRANSFER_FAILED"
  /** The Docker engine wants credentials (HTTP 401). */
  | "UNAUTHORIZED"
  /** The SFTP server does not support the operation. */
  | "UNSUPPORTED"
  /** A checksum could not be computed, or did not match. */
  | "VERIFY_FAILED";

/**
 * A domain error with a stable `code` the tool layer and tests can match on.
 * The message says what failed, why, and what to try; it never holds a secret.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RsmError } from "./errors.ts";
 *
 * const err = new RsmError("NOT_FOUND", "Cannot find session box: no such session; see ssh_list");
 * assert.equal(err.code, "NOT_FOUND");
 * assert.ok(err instanceof Error);
 * ```
 */
export class RsmError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RsmError";
    this.code = code;
  }
}

/** The message of anything thrown, without a stack. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
