/**
 * The output store and the result renderer, in process: exact bounds and omitted counts for
 * every size and both formats, raw text sections, and the store's paging, grep, eviction and
 * file modes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Capture, OutputStore } from "../lib/output/mod.ts";
import { renderResult } from "../lib/mcp/render.ts";

const enc = new TextEncoder();
const seq = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join("");

async function withStore(
  fn: (store: OutputStore, dir: string) => Promise<void>,
  options: { maxTotal?: number; maxPerOutput?: number } = {},
) {
  const dir = await Deno.makeTempDir();
  const store = new OutputStore(join(dir, "outputs"), options);
  await store.start();
  try {
    await fn(store, join(dir, "outputs"));
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Reads a result's stdout back: what the model sees between the section header and the next. */
function shownOmitted(text: string): number | undefined {
  const m = /\[… (\d+) bytes omitted/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * The source bytes a shown text holds: the part before the marker must be a head of the
 * source (less the newline put before the marker), the part after it a tail.
 */
function keptBytes(shown: string, source: string, where: string): number {
  const parts = shown.split(/\[… \d+ bytes omitted[^\]]*\]/);
  if (parts.length === 1) return enc.encode(shown).length;
  let head = parts[0]!;
  if (!source.startsWith(head)) head = head.slice(0, -1);
  const tail = parts[1]!.replace(/^\n/, "");
  assert.ok(source.startsWith(head), `${where}: head is a prefix`);
  assert.ok(source.endsWith(tail), `${where}: tail is a suffix`);
  return enc.encode(head).length + enc.encode(tail).length;
}

Deno.test("a result shows program output as raw text after a TOON header", () => {
  const out = 'line one\nline "two"\ttab \\ back ü\n';
  const r = renderResult({ exit_code: 3, duration_ms: 11, stdout: out, stderr: "err\n" }, {
    format: "toon",
    max: 32768,
  });
  assert.equal(
    r.text,
    "exit_code: 3\nduration_ms: 11\n" +
      `--- stdout (${enc.encode(out).length} bytes) ---\n${out}--- stderr (4 bytes) ---\nerr\n`,
  );
  assert.deepEqual(r.structured, {
    exit_code: 3,
    duration_ms: 11,
    stdout: out,
    stderr: "err\n",
  });
});

Deno.test("bounds are exact: truncated iff bytes were left out, omitted counts equal, both formats", async () => {
  await withStore(async (store) => {
    for (const n of [1000, 5000, 6000, 6500, 7000, 20_000, 100_000, 400_000]) {
      const text = seq(n);
      const c = new Capture({ store, label: "test" });
      c.push(enc.encode(text));
      await c.end();
      for (const format of ["toon", "json"] as const) {
        for (const keep of ["both", "head", "tail"] as const) {
          const max = 32768;
          const r = renderResult({ exit_code: 0, stdout: c, stderr: "" }, {
            format,
            max,
            keep,
            store,
          });
          const where = `seq ${n} ${format} keep=${keep}`;
          assert.ok(enc.encode(r.text).length <= max, `${where}: ${r.text.length} > ${max}`);
          const obj = r.structured!;
          const shown = String(obj.stdout);
          const marker = shownOmitted(shown);
          const omitted = text.length - keptBytes(shown, text, where);
          assert.equal(obj.truncated === true, omitted > 0, where);
          if (omitted > 0) {
            assert.equal(marker, omitted, `${where}: marker`);
            assert.equal(obj.omitted_bytes, omitted, `${where}: field`);
            assert.equal(obj.total_bytes, text.length, where);
            assert.match(String(obj.output_id), /^o-/);
            assert.ok(r.text.includes(`output_id=${obj.output_id}`), `${where}: marker names id`);
          } else {
            assert.equal(shown, text, where);
          }
          if (format === "json") assert.deepEqual(JSON.parse(r.text), obj);
        }
      }
    }
  });
});

Deno.test("the output store pages exact bytes and greps with line numbers and context", async () => {
  await withStore(async (store, dir) => {
    const text = seq(100_000).replace("50000\n", "needle here\n");
    const w = store.create("test");
    for (let i = 0; i < text.length; i += 7777) w.append(enc.encode(text.slice(i, i + 7777)));
    await w.close();
    const st = await Deno.stat(join(dir, w.id));
    assert.equal(st.mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    let back = "";
    for (let off = 0; off < text.length; off += 30_000) {
      back += new TextDecoder().decode(await store.read(w.id, off, 30_000));
    }
    assert.equal(back, text);
    const g = await store.grep(w.id, /needle/, { context: 1 });
    assert.equal(g.matches, 1);
    assert.deepEqual(g.lines.map((l) => [l.line, l.text, l.match]), [
      [49999, "49999", false],
      [50000, "needle here", true],
      [50001, "50001", false],
    ]);
    assert.equal(store.stats().outputs, 1);
  });
});

Deno.test("the output store evicts the oldest outputs past its total and caps one output", async () => {
  await withStore(async (store) => {
    const a = store.put("a".repeat(600), "a");
    const b = store.put("b".repeat(600), "b");
    await store.read(b, 0, 1);
    assert.equal(store.info(a), undefined, "oldest evicted");
    assert.equal(store.info(b)?.stored_bytes, 600);
    const w = store.create("big");
    w.append(enc.encode("c".repeat(900)));
    await w.close();
    assert.equal(store.info(w.id)?.total_bytes, 900);
    assert.equal(store.info(w.id)?.stored_bytes, 800);
    await assert.rejects(store.read("o-nosuch00", 0, 1), /no such output/);
  }, { maxTotal: 1000, maxPerOutput: 800 });
});

Deno.test("outputs written by an earlier store are served again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = new OutputStore(dir);
    const id = first.put("kept across restarts\n", "x");
    await first.close();
    const second = new OutputStore(dir);
    await second.start();
    assert.equal(new TextDecoder().decode(await second.read(id, 0, 100)), "kept across restarts\n");
    await second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a Capture keeps head and tail of a long stream and never splits UTF-8", () => {
  const c = new Capture({ keep: 1024 });
  c.push(enc.encode("START"));
  for (let i = 0; i < 1000; i++) c.push(enc.encode("é".repeat(100)));
  c.push(enc.encode("END"));
  assert.equal(c.whole, undefined, "the middle is gone without a store");
  const r = renderResult({ stdout: c }, { format: "toon", max: 2000 });
  const body = r.text.slice(r.text.indexOf("---\n") + 4);
  assert.ok(body.startsWith("START"));
  assert.ok(body.endsWith("END"));
  assert.ok(!body.includes("\ufffd"));
  const omitted = Number(/\[… (\d+) bytes omitted …\]/.exec(body)![1]);
  const shown = enc.encode(body.replace(/\n\[… \d+ bytes omitted …\]\n/, "")).length;
  assert.equal(shown + omitted, c.total);
  assert.equal(r.structured!.omitted_bytes, omitted);
  const small = new Capture({ keep: 1024 });
  small.push(enc.encode("hello"));
  assert.equal(new TextDecoder().decode(small.whole), "hello");
});

Deno.test("stdout and stderr share the bound: a short stderr is shown whole", () => {
  const r = renderResult({ stdout: seq(50_000), stderr: "the error\n" }, {
    format: "json",
    max: 8192,
  });
  const o = r.structured!;
  assert.equal(o.stderr, "the error\n");
  assert.equal(o.truncated, true);
  assert.ok(enc.encode(r.text).length <= 8192);
  const both = renderResult({ stdout: seq(50_000), stderr: seq(50_000) }, {
    format: "toon",
    max: 8192,
  });
  assert.ok(enc.encode(both.text).length <= 8192);
  assert.ok(both.structured!.stderr_omitted_bytes as number > 0);
});
