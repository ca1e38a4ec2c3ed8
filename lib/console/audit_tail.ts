/** How much of the end of audit.log the console reads (bytes). */
const TAIL_BYTES = 32 * 1024;

let cache: { file: string; size: number; mtime: number; rows: Record<string, unknown>[] } | null =
  null;

/**
 * The last `n` entries of the audit log, newest first. Reads only the file's last 32 KiB and
 * only when its size or time changed, so a console refreshing every second costs a `stat`.
 * A missing or unreadable file is an empty list; torn or foreign lines are skipped.
 */
export function auditTail(file: string, n: number): Record<string, unknown>[] {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(file);
  } catch {
    return [];
  }
  const mtime = st.mtime?.getTime() ?? 0;
  if (cache && cache.file === file && cache.size === st.size && cache.mtime === mtime) {
    return cache.rows.slice(0, n);
  }
  let text = "";
  try {
    using f = Deno.openSync(file, { read: true });
    const start = Math.max(0, st.size - TAIL_BYTES);
    f.seekSync(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(st.size - start);
    let got = 0;
    while (got < buf.length) {
      const r = f.readSync(buf.subarray(got));
      if (r === null || r === 0) break;
      got += r;
    }
    text = new TextDecoder().decode(buf.subarray(0, got));
    if (start > 0) text = text.slice(text.indexOf("\n") + 1); // drop the cut first line
  } catch {
    return [];
  }
  const rows: Record<string, unknown>[] = [];
  const lines = text.split("\n");
  for (let i = lines.length - 1; i >= 0 && rows.length < 50; i--) {
    const line = lines[i]!;
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line);
      if (v && typeof v === "object") rows.push(v);
    } catch { /* torn line */ }
  }
  cache = { file, size: st.size, mtime, rows };
  return rows.slice(0, n);
}
