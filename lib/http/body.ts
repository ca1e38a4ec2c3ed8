/** Request body limit (docs/architecture.md "The daemon"). */
export const MAX_BODY = 16 * 1024 * 1024;

/** Thrown by {@link readBody} past the limit. */
export class BodyTooLarge extends Error {}

/**
 * Reads a request body as text, refusing more than `limit` bytes without buffering past it
 * (checks Content-Length first, then counts while streaming).
 */
export async function readBody(req: Request, limit = MAX_BODY): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (declared > limit) {
    await req.body?.cancel();
    throw new BodyTooLarge();
  }
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      throw new BodyTooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(all);
}
