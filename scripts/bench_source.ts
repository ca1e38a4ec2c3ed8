/**
 * A byte source for the forward benchmark: `deno run --allow-net scripts/bench_source.ts
 * HOST PORT` listens; a client sends `N\n` and gets N bytes, then the server closes. Prints
 * `ready` once listening. Runs on loopback or inside a benchmark netns (no npm imports, so it
 * needs no network to start).
 */
const [host, port] = [Deno.args[0] ?? "127.0.0.1", Number(Deno.args[1] ?? 0)];
const chunk = new Uint8Array(1 << 20);
for (let i = 0; i < chunk.length; i += 65536) {
  crypto.getRandomValues(chunk.subarray(i, i + 65536));
}

async function serve(conn: Deno.Conn): Promise<void> {
  try {
    const buf = new Uint8Array(64);
    let line = "";
    while (!line.includes("\n")) {
      const n = await conn.read(buf);
      if (n === null) return;
      line += new TextDecoder().decode(buf.subarray(0, n));
    }
    let left = Number(line.trim());
    while (left > 0) {
      const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
      let off = 0;
      while (off < part.length) off += await conn.write(part.subarray(off));
      left -= part.length;
    }
  } catch {
    /* the client went away */
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

const listener = Deno.listen({ hostname: host, port });
console.log(`ready ${(listener.addr as Deno.NetAddr).port}`);
for await (const conn of listener) serve(conn);
