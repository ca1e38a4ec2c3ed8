/** Turning dockerode failures into messages that say what failed, why, and what to try. */
import { type ErrorCode, RsmError } from "../errors.ts";

/** A dockerode HTTP error (the engine answered with a status). */
interface EngineError {
  statusCode: number;
  json?: { message?: string } | Buffer | string | null | undefined;
  message: string;
}

/** Whether `err` is an answer from the engine (it has an HTTP status) rather than a transport failure. */
export function isEngineError(err: unknown): err is EngineError {
  return typeof err === "object" && err !== null &&
    typeof (err as { statusCode?: unknown }).statusCode === "number";
}

/** The engine's own message of an HTTP error, e.g. `No such container: web`. */
export function engineMessage(err: EngineError): string {
  const j = err.json;
  if (j && typeof j === "object" && !(j instanceof Uint8Array) && typeof j.message === "string") {
    return j.message;
  }
  if (typeof j === "string" && j.trim()) return j.trim();
  if (j instanceof Uint8Array && j.length) return new TextDecoder().decode(j).trim();
  return err.message.replace(/^\(HTTP code \d+\)\s*/, "").trim();
}

const CODES: Record<number, ErrorCode> = {
  400: "BAD_ARGUMENT",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  409: "CONFLICT",
  500: "ENGINE_ERROR",
};

/** What to change for engine messages an agent meets often; the engine's text is kept. */
const ADVICE: [RegExp, string][] = [
  [
    /remov\w* a running container|stop the container before|removed without force/i,
    "pass force: true to remove it anyway, or stop it first with docker_container_stop",
  ],
  [
    /image is being used by|unable to (delete|remove) .* (must be forced|is being used)|must force/i,
    "pass force: true, or remove the containers that use the image first",
  ],
  [
    /name .* is already in use/i,
    "choose another name, or remove the old container with docker_container_remove",
  ],
  [
    /port is already allocated|address already in use/i,
    "publish on another host port, or on port 0 to let the engine pick a free one",
  ],
  [/is not running|is paused/i, "start it first with docker_container_start"],
  [/no such image/i, "pull it with docker_image_pull, or check the name and tag"],
];

/** The advice for an engine message, if one is known. */
export function engineAdvice(message: string): string | undefined {
  return ADVICE.find(([re]) => re.test(message))?.[1];
}

/**
 * Wraps an engine answer as an RsmError: `Cannot <action>: <engine message>` plus what to
 * change (known advice first, else the caller's hint).
 * Transport failures are returned unchanged (the host layer turns them into `DOCKER_UNREACHABLE`).
 */
export function engineError(action: string, err: unknown, hint?: string): unknown {
  if (!isEngineError(err)) return err;
  const msg = engineMessage(err);
  const code = CODES[err.statusCode] ?? "ENGINE_ERROR";
  const tail = engineAdvice(msg) ?? hint ??
    (err.statusCode === 404 ? "check the name or id (docker_containers / docker_image_list)" : "");
  return new RsmError(code, `Cannot ${action}: ${msg}${tail ? `; ${tail}` : ""}`, { cause: err });
}

/** Explains a transport failure (socket missing, refused, TLS, SSH) in one line. */
export function transportMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const m = e?.message ?? String(err);
  const code = e?.code ?? "";
  if (code === "ENOENT" || /ENOENT|No such file/i.test(m)) return `socket not found (${m})`;
  if (code === "ECONNREFUSED" || /ECONNREFUSED|connection refused/i.test(m)) {
    return `connection refused (${m}); is the engine running?`;
  }
  if (code === "EACCES" || /EACCES|permission denied/i.test(m)) {
    return `permission denied (${m}); is this user allowed to use the socket?`;
  }
  if (/HTTP request to an HTTPS server/i.test(m)) {
    return "the engine speaks TLS but this host has no TLS settings; give tls_ca_path (and tls_cert_path, tls_key_path for mutual TLS)";
  }
  if (
    /certificate|self[- ]signed|unknown ?issuer|UnknownIssuer|tls|ssl|handshake/i.test(m + code)
  ) {
    return `TLS handshake failed (${m}); check tls_ca_path (the CA that signed the engine's certificate), tls_cert_path and tls_key_path`;
  }
  return m || code || "unknown error";
}
