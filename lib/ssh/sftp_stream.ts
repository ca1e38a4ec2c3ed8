/**
 * Pipelined SFTP file copies with bounded memory: up to `concurrency` requests of
 * `chunkSize` bytes in flight (like OpenSSH's sftp and ssh2's fastGet/fastPut), local side
 * read or written strictly in order through an open `Deno.FsFile`. Memory per file is at most
 * `concurrency × chunkSize` (4 MiB by default), whatever the file's size.
 */
import { Buffer } from "node:buffer";
import type { SFTPWrapper } from "ssh2";
import { readAt, writeAt } from "./sftp_util.ts";

/** Pipelining knobs. */
export interface PipeOptions {
  /** Bytes per SFTP read/write request. Default 128 KiB. */
  chunkSize?: number | undefined;
  /** Requests in flight per file. Default 32. */
  concurrency?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Called after every chunk that reached its destination. */
  onBytes?: ((n: number) => void) | undefined;
}

/** Default request size (OpenSSH's sftp-server takes up to 255 KiB per request). */
export const CHUNK_SIZE = 128 * 1024;
/** Default requests in flight per file. */
export const CONCURRENCY = 32;

/** Reads `[pos, pos+len)` fully, or up to EOF (a shorter result means EOF). */
async function readFull(
  sftp: SFTPWrapper,
  handle: Uint8Array,
  pos: number,
  len: number,
): Promise<Uint8Array> {
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = await readAt(sftp, handle, buf, got, len - got, pos + got);
    if (!n) break;
    got += n;
  }
  return got === len ? buf : buf.subarray(0, got);
}

/** Fills `buf` from `file`; returns the bytes read (fewer only at EOF). */
async function fill(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let n = 0;
  while (n < buf.length) {
    const r = await file.read(buf.subarray(n));
    if (r === null) break;
    n += r;
  }
  return n;
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await file.write(data.subarray(off));
}

/**
 * Copies `file` (from its current position to EOF) into the open remote `handle` from offset
 * 0. Returns the bytes written.
 */
export async function putFile(
  sftp: SFTPWrapper,
  file: Deno.FsFile,
  handle: Uint8Array,
  options: PipeOptions = {},
): Promise<number> {
  const chunk = options.chunkSize ?? CHUNK_SIZE;
  const limit = options.concurrency ?? CONCURRENCY;
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let pos = 0;
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      if (failure) throw failure;
      const buf = Buffer.allocUnsafe(chunk);
      const n = await fill(file, buf);
      if (n === 0) break;
      const p: Promise<void> = writeAt(sftp, handle, buf, 0, n, pos).then(
        () => options.onBytes?.(n),
        (err) => {
          failure ??= err;
        },
      ).finally(() => inflight.delete(p));
      inflight.add(p);
      pos += n;
      while (inflight.size >= limit) await Promise.race(inflight);
      if (n < chunk) break;
    }
  } finally {
    await Promise.all(inflight);
  }
  if (failure) throw failure;
  return pos;
}

/**
 * Copies the open remote `handle` (from offset 0 to EOF) into `file`, in order. `sizeHint`
 * (the stat size) bounds how far ahead reads are issued; a file that grew is read to its end.
 * Returns the bytes written.
 */
export async function getFile(
  sftp: SFTPWrapper,
  handle: Uint8Array,
  file: Deno.FsFile,
  sizeHint: number,
  options: PipeOptions = {},
): Promise<number> {
  const chunk = options.chunkSize ?? CHUNK_SIZE;
  const limit = options.concurrency ?? CONCURRENCY;
  const slots: Promise<Uint8Array>[] = [];
  let next = 0;
  let total = 0;
  const issue = () => {
    while (slots.length < limit && (next < sizeHint || slots.length === 0)) {
      const p = readFull(sftp, handle, next, chunk);
      p.catch(() => {}); // observed when its turn comes
      slots.push(p);
      next += chunk;
    }
  };
  try {
    issue();
    while (slots.length) {
      options.signal?.throwIfAborted();
      const data = await slots.shift()!;
      if (data.length === chunk) issue(); // keep the pipe full while this chunk is written
      if (data.length) {
        await writeAll(file, data);
        total += data.length;
        options.onBytes?.(data.length);
      }
      if (data.length < chunk) break; // EOF
    }
  } finally {
    await Promise.allSettled(slots);
  }
  return total;
}
