/**
 * Reading bounded results as a model sees them: the text of a tool result, one raw text
 * section of a TOON result, and a check that a shown output is the full one with exactly the
 * bytes the result says were left out (README "Readable results and the output store").
 */
import assert from "node:assert/strict";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

const enc = new TextEncoder();

/** The text of a tool result. */
export const textOf = (r: CallToolResult): string =>
  r.content.map((c: { type: string; text?: string }) => (c.type === "text" ? c.text : ""))
    .join("");

/** What `seq 1 n` prints. */
export const seqText = (n: number): string =>
  Array.from({ length: n }, (_, i) => `${i + 1}\n`).join("");

/** The body of one `--- name (…) ---` section of a TOON result (its bytes as shown). */
export function section(text: string, name: string): { header: string; body: string } {
  const at = text.indexOf(`--- ${name} (`);
  assert.ok(at >= 0, `no ${name} section in:\n${text.slice(0, 400)}`);
  const nl = text.indexOf("\n", at);
  const header = text.slice(at, nl);
  const rest = text.slice(nl + 1);
  const next = rest.search(/^--- (stdout|stderr|output|data|logs|screen|tail) \(\d+ bytes/m);
  let body = next < 0 ? rest : rest.slice(0, next);
  // a newline put in only to start the next header on its own line is not part of the text
  const size = Number(/\((\d+) bytes/.exec(header)![1]);
  const cut = /shown/.test(header);
  if (!cut && body.endsWith("\n") && enc.encode(body).length === size + 1) body = body.slice(0, -1);
  return { header, body };
}

/** The text of field `name` as shown: a JSON result's value, or a TOON result's section. */
export function shownField(r: CallToolResult, format: "toon" | "json", name: string): string {
  const text = textOf(r);
  return format === "json" ? String(JSON.parse(text)[name]) : section(text, name).body;
}

/**
 * Checks a shown output against the full one: what is shown is the full text's head and
 * tail around at most one marker; `truncated` is true exactly when bytes were left out; the
 * marker's count, `omitted_bytes` and `total_bytes` are exact, and the marker says where the
 * left-out bytes are: the result's `output_id` (output_read), or for a job's output
 * (`job`: its id) the job_output offset right after the shown head. Returns the number of
 * bytes left out.
 */
export function checkCut(
  where: string,
  full: string,
  shown: string,
  o: Record<string, unknown>,
  job?: string,
): number {
  const m = job
    ? /\[… (\d+) bytes omitted; job_output job_id=(j\w+) offset=(\d+) …\]/.exec(shown)
    : /\[… (\d+) bytes omitted; output_read output_id=(o-\w+) …\]/.exec(shown);
  const parts = shown.split(/\[… \d+ bytes omitted[^\]]*\]\n?/);
  assert.ok(parts.length <= 2, `${where}: one marker at most`);
  let kept = 0;
  let headBytes = 0;
  if (parts.length === 2) {
    // a newline put in after a head that does not end a line is not part of the text
    const head = full.startsWith(parts[0]!) ? parts[0]! : parts[0]!.replace(/\n$/, "");
    assert.ok(full.startsWith(head), `${where}: head`);
    assert.ok(full.endsWith(parts[1]!), `${where}: tail`);
    headBytes = enc.encode(head).length;
    kept = headBytes + enc.encode(parts[1]!).length;
  } else {
    assert.equal(shown, full, where);
    kept = enc.encode(full).length;
  }
  const total = enc.encode(full).length;
  const omitted = total - kept;
  assert.equal(o.truncated === true, omitted > 0, `${where}: truncated`);
  if (omitted > 0) {
    assert.ok(m, `${where}: marker`);
    assert.equal(Number(m![1]), omitted, `${where}: marker count`);
    assert.equal(o.omitted_bytes, omitted, `${where}: omitted_bytes`);
    assert.equal(o.total_bytes, total, `${where}: total_bytes`);
    if (job) {
      assert.equal(m![2], job, `${where}: job_id`);
      assert.equal(Number(m![3]), headBytes, `${where}: offset of the left-out bytes`);
    } else {
      assert.equal(o.output_id, m![2], `${where}: output_id`);
    }
  }
  return omitted;
}
