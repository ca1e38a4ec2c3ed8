/**
 * SOCKS5 server side (RFC 1928) for dynamic forwards: no-auth method, CONNECT command,
 * IPv4 / IPv6 / domain-name targets. Domain names are passed on unresolved, so the SSH server
 * resolves them (like `ssh -D` and `curl --socks5-hostname`).
 *
 * Every failure ends with a reply code and a closed socket, never a hang: a client that stalls
 * mid-handshake is dropped after the handshake timeout.
 */
import { Buffer } from "node:buffer";
import type { Socket } from "node:net";

/** SOCKS5 reply codes (RFC 1928 §6). */
export const REPLY = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

/** A CONNECT request read from a client. */
export interface SocksRequest {
  /** IPv4 dotted quad, IPv6 text form, or the domain name as sent. */
  host: string;
  port: number;
}

/** A handshake that failed; `reply` was sent already when it is set. */
export class SocksError extends Error {
  constructor(message: string, readonly reply?: number) {
    super(message);
    this.name = "SocksError";
  }
}

const NO_ACCEPTABLE = Buffer.from([0x05, 0xff]);
const NO_AUTH = Buffer.from([0x05, 0x00]);

/**
 * Reads the greeting and the request from `sock` (which must be paused or fresh), answers
 * the method selection, and resolves with the CONNECT target. Bytes the client sent after
 * the request are put back into `sock`. Protocol errors send the matching reply, then reject.
 */
export function readSocksRequest(
  sock: Socket,
  options: { timeoutMs: number },
): Promise<SocksRequest> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    let greeted = false;
    const timer = setTimeout(
      () => fail(new SocksError("SOCKS handshake timed out")),
      options.timeoutMs,
    );
    const cleanup = () => {
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("end", onEnd);
      sock.off("close", onEnd);
    };
    const fail = (err: SocksError) => {
      cleanup();
      if (err.reply !== undefined) sendReply(sock, err.reply);
      reject(err);
    };
    const onEnd = () => fail(new SocksError("client closed during the SOCKS handshake"));
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (buf.length > 1024) return fail(new SocksError("SOCKS handshake too long"));
      if (!greeted) {
        if (buf.length < 2) return;
        if (buf[0] !== 0x05) return fail(new SocksError(`not SOCKS5 (version byte ${buf[0]})`));
        const n = buf[1]!; // length checked above
        if (buf.length < 2 + n) return;
        const methods = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        if (!methods.includes(0x00)) {
          sock.write(NO_ACCEPTABLE);
          return fail(new SocksError("client offers no no-auth method"));
        }
        sock.write(NO_AUTH);
        greeted = true;
      }
      const parsed = parseRequest(buf);
      if (parsed === undefined) return; // incomplete
      if (parsed instanceof SocksError) return fail(parsed);
      cleanup();
      sock.pause();
      if (parsed.used < buf.length) sock.unshift(buf.subarray(parsed.used));
      resolve(parsed.request);
    };
    sock.on("data", onData);
    sock.once("end", onEnd);
    sock.once("close", onEnd);
    sock.resume();
  });
}

function parseRequest(b: Buffer): { request: SocksRequest; used: number } | SocksError | undefined {
  if (b.length < 5) return undefined;
  if (b[0] !== 0x05) return new SocksError(`bad request version ${b[0]}`, REPLY.GENERAL_FAILURE);
  const cmd = b[1];
  const atyp = b[3];
  let host: string;
  let at: number;
  if (atyp === 0x01) {
    if (b.length < 10) return undefined;
    host = `${b[4]}.${b[5]}.${b[6]}.${b[7]}`;
    at = 8;
  } else if (atyp === 0x03) {
    const len = b[4]!; // b.length >= 5 checked above
    if (b.length < 5 + len + 2) return undefined;
    host = b.subarray(5, 5 + len).toString("latin1");
    at = 5 + len;
    if (!len) return new SocksError("empty domain name", REPLY.GENERAL_FAILURE);
  } else if (atyp === 0x04) {
    if (b.length < 22) return undefined;
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(4 + 2 * i).toString(16));
    host = groups.join(":");
    at = 20;
  } else {
    return new SocksError(`address type ${atyp} not supported`, REPLY.ADDRESS_TYPE_NOT_SUPPORTED);
  }
  if (cmd !== 0x01) {
    return new SocksError(
      `command ${cmd} not supported (CONNECT only)`,
      REPLY.COMMAND_NOT_SUPPORTED,
    );
  }
  return { request: { host, port: b.readUInt16BE(at) }, used: at + 2 };
}

/** Writes a reply with code `code` (bound address 0.0.0.0:0). */
export function sendReply(sock: Socket, code: number): void {
  if (sock.destroyed || sock.writableEnded) return;
  sock.write(Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]));
}

/**
 * The reply code for a failed dial through SSH. OpenSSH answers a failed `direct-tcpip` open
 * with reason 1 (administratively prohibited) or 2 (connect failed) and the `strerror` /
 * resolver text as description.
 */
export function replyFor(err: unknown): number {
  const e = err as { reason?: unknown; message?: string; code?: string };
  if (e?.code === "DIAL_TIMEOUT") return REPLY.HOST_UNREACHABLE;
  if (e?.reason === 1) return REPLY.NOT_ALLOWED;
  const m = (e?.message ?? "").toLowerCase();
  if (m.includes("refused")) return REPLY.CONNECTION_REFUSED;
  if (m.includes("network is unreachable")) return REPLY.NETWORK_UNREACHABLE;
  if (
    m.includes("no route") || m.includes("unreachable") || m.includes("timed out") ||
    m.includes("name") || m.includes("resolve") || m.includes("not known") ||
    m.includes("getaddrinfo") || m.includes("no address")
  ) return REPLY.HOST_UNREACHABLE;
  if (m.includes("prohibited")) return REPLY.NOT_ALLOWED;
  return REPLY.GENERAL_FAILURE;
}
