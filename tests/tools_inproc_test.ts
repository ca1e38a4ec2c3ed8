/**
 * The tool layer in-process (tests/support/inproc.ts): validation errors, TOON/JSON rendering,
 * output bounds and tool profiles, over the SDK's in-memory transport — no daemon, no sshd.
 * The end-to-end tests (tools_list_test.ts, output_results_test.ts …) check the same surface
 * through `rsm stdio`; these catch wiring mistakes in milliseconds.
 */
import assert from "node:assert/strict";
import { decode } from "@toon-format/toon";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { type InProc, resultText, startInProc } from "./support/inproc.ts";
import { allTools, GROUPS } from "../lib/mcp/mod.ts";
import { defineTool, fields } from "../lib/mcp/tool.ts";

/** A value of the wrong JSON type for a listed property schema. */
function wrongValue(schema: Record<string, unknown>): unknown {
  const types = new Set<string>();
  const collect = (s: Record<string, unknown>) => {
    if (typeof s.type === "string") types.add(s.type);
    if (Array.isArray(s.type)) { for (const t of s.type) types.add(t); }
    for (const k of ["anyOf", "oneOf"]) {
      if (Array.isArray(s[k])) { for (const sub of s[k]) collect(sub as Record<string, unknown>); }
    }
    if (s.enum || s.const !== undefined) types.add("enum");
  };
  collect(schema);
  if (types.size === 0) return undefined; // accepts anything
  if (!types.has("object")) return { not: "this" };
  if (!types.has("array")) return [1, 2];
  if (!types.has("boolean")) return true;
  return undefined;
}

async function withRsm(fn: (rsm: InProc) => Promise<void>, groups = GROUPS) {
  await using rsm = await startInProc({ groups });
  await fn(rsm);
}

Deno.test("in-process: every listed tool rejects an unknown field, naming the field", async () => {
  await withRsm(async (rsm) => {
    const tools = await rsm.listTools();
    assert.ok(tools.length > 60, `only ${tools.length} tools listed`);
    for (const tool of tools) {
      const r = await rsm.callRaw(tool.name, { no_such_field: 1 });
      assert.equal(r.isError, true, `${tool.name} accepted an unknown field`);
      const text = resultText(r);
      assert.match(text, new RegExp(`^invalid arguments for ${tool.name}: `), text);
      assert.match(text, /unknown field "no_such_field"/, `${tool.name}: ${text}`);
    }
  });
});

Deno.test("in-process: every required field is named when missing, and no more", async () => {
  await withRsm(async (rsm) => {
    let checked = 0;
    for (const tool of await rsm.listTools()) {
      const required = (tool.inputSchema.required ?? []) as string[];
      if (required.length === 0) continue;
      const text = await rsm.callError(tool.name, {});
      assert.match(text, new RegExp(`^invalid arguments for ${tool.name}: `), text);
      for (const field of required.slice(0, 8)) {
        assert.match(text, new RegExp(`field "${field}": required .* is missing`), text);
      }
      checked++;
    }
    assert.ok(checked > 40, `only ${checked} tools have required fields`);
  });
});

Deno.test("in-process: a field of the wrong type is refused with what was expected", async () => {
  await withRsm(async (rsm) => {
    let checked = 0;
    for (const tool of await rsm.listTools()) {
      const props = (tool.inputSchema.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [field, schema] of Object.entries(props)) {
        const bad = wrongValue(schema);
        if (bad === undefined) continue;
        const text = await rsm.callError(tool.name, { [field]: bad });
        assert.match(text, new RegExp(`^invalid arguments for ${tool.name}: `), text);
        // the bad field is named (aliases may refuse an old form with their own sentence)
        assert.ok(
          text.includes(`"${field}`) || text.includes(`${field} `),
          `${tool.name}.${field}: ${text}`,
        );
        checked++;
      }
    }
    assert.ok(checked > 200, `only ${checked} fields checked`);
  });
});

Deno.test("in-process: arguments that are not an object are refused plainly", async () => {
  await withRsm(async (rsm) => {
    const text = await rsm.callError("status", { nested: { deep: [1] } });
    assert.match(text, /invalid arguments for status: unknown field "nested"/);
    // an unknown tool names the profile's size
    const unknown = await rsm.callError("no_such_tool", {});
    assert.match(unknown, /unknown tool "no_such_tool": this daemon serves \d+ tools/);
  });
});

Deno.test("in-process: status renders as TOON, and as JSON equal to structuredContent", async () => {
  {
    await using rsm = await startInProc({ format: "toon" });
    const r = await rsm.callRaw("status");
    assert.notEqual(r.isError, true, resultText(r));
    const text = resultText(r);
    assert.match(text, /^version: /m);
    assert.match(text, /^format: toon$/m);
    assert.throws(() => JSON.parse(text)); // TOON, not JSON
    const decoded = decode(text) as Record<string, unknown>;
    assert.equal(decoded.format, "toon");
    assert.deepEqual(decoded.sessions, []);
    assert.equal(decoded.pid, Deno.pid);
  }
  {
    await using rsm = await startInProc({ format: "json" });
    const r = await rsm.callRaw("status");
    const parsed = JSON.parse(resultText(r));
    assert.equal(parsed.format, "json");
    assert.deepEqual(parsed.jobs, []);
    assert.deepEqual(r.structuredContent, parsed);
  }
});

Deno.test("in-process: job_list of nothing is an empty list in both formats", async () => {
  {
    await using rsm = await startInProc({ format: "json", groups: ["job"] });
    assert.deepEqual(JSON.parse(await rsm.call("job_list")), []);
  }
  {
    await using rsm = await startInProc({ format: "toon", groups: ["job"] });
    assert.deepEqual(decode(await rsm.call("job_list")), []);
  }
});

/** The bytes of a stored output: 5,000 numbered lines, ~100 KB. */
function bigText(): string {
  let s = "";
  for (let i = 1; i <= 5000; i++) s += `line ${String(i).padStart(5, "0")} ${"x".repeat(8)}\n`;
  return s;
}

Deno.test("in-process: output_read pages a stored output exactly, in bounded pages", async () => {
  await using rsm = await startInProc({ format: "json", groups: ["meta"], maxOutput: 4096 });
  const text = bigText();
  const id = rsm.app.outputs.put(text, "test");
  let offset = 0;
  let joined = "";
  let pages = 0;
  for (;;) {
    const r = await rsm.callRaw("output_read", { output_id: id, offset });
    const body = resultText(r);
    assert.ok(new TextEncoder().encode(body).length <= 4096, `page of ${body.length} bytes`);
    const page = JSON.parse(body);
    assert.deepEqual(r.structuredContent, page);
    assert.equal(page.total_bytes, text.length);
    assert.equal(page.offset, offset);
    assert.equal(page.bytes, page.data.length);
    joined += page.data;
    pages++;
    if (page.eof) {
      assert.equal(page.next_offset, undefined);
      break;
    }
    assert.equal(page.next_offset, offset + page.bytes);
    offset = page.next_offset;
  }
  assert.equal(joined, text);
  assert.ok(pages > 20, `${pages} pages`);
  // an offset past the end is an empty last page or a clear error, never a crash
  const past = await rsm.callRaw("output_read", { output_id: id, offset: text.length + 10 });
  if (past.isError) assert.match(resultText(past), /offset/);
});

Deno.test("in-process: output_read grep returns numbered matches with context", async () => {
  await using rsm = await startInProc({ format: "json", groups: ["meta"] });
  const id = rsm.app.outputs.put(bigText(), "test");
  const r = JSON.parse(
    await rsm.call("output_read", { output_id: id, grep: "line 0(4242|0007) ", context: 1 }),
  );
  assert.equal(r.matches, 2);
  assert.equal(
    r.output,
    "6-line 00006 xxxxxxxx\n7:line 00007 xxxxxxxx\n8-line 00008 xxxxxxxx\n" +
      "4241-line 04241 xxxxxxxx\n4242:line 04242 xxxxxxxx\n4243-line 04243 xxxxxxxx\n",
  );
  const none = JSON.parse(await rsm.call("output_read", { output_id: id, grep: "nowhere" }));
  assert.equal(none.matches, 0);
  assert.equal(none.output, "");
  const bad = await rsm.callError("output_read", { output_id: id, grep: "(" });
  assert.match(bad, /Cannot search with grep "\(": not a valid regular expression/);
  const missing = await rsm.callError("output_read", { output_id: "out_nope" });
  assert.match(missing, /out_nope/);
});

/** A tool that returns a program's output, as exec tools do, to see the registry cut it. */
const bigOutput = defineTool({
  name: "test_big_output",
  group: "meta",
  description: "Returns 5,000 numbered lines as stdout.",
  input: { ...fields.output() },
  run: () => Promise.resolve({ exit_code: 0, stdout: bigText(), stderr: "" }),
});

Deno.test("in-process: a cut output keeps head, tail or both, and counts what it left out", async () => {
  await using rsm = await startInProc({ format: "json", groups: ["meta"], tools: [bigOutput] });
  const full = bigText();
  for (const keep of ["head", "tail", "both"] as const) {
    const r = await rsm.callRaw("test_big_output", { max_output: 4096, keep });
    const body = resultText(r);
    assert.ok(new TextEncoder().encode(body).length <= 4096, `${keep}: ${body.length} bytes`);
    const o = JSON.parse(body);
    assert.deepEqual(r.structuredContent, o);
    assert.equal(o.truncated, true);
    assert.equal(o.total_bytes, full.length);
    const m = /\[… (\d+) bytes omitted; output_read output_id=(o-\w+) …\]\n?/.exec(o.stdout);
    assert.ok(m, `${keep}: no marker in ${o.stdout.slice(0, 200)}`);
    const [head, tail] = o.stdout.split(m[0]);
    assert.equal(Number(m[1]), o.omitted_bytes);
    assert.equal(o.omitted_bytes, full.length - head.length - tail.length, `${keep}: count`);
    assert.equal(m[2], o.output_id);
    assert.ok(full.startsWith(head) && full.endsWith(tail), keep);
    if (keep === "head") assert.equal(tail, "");
    if (keep === "tail") assert.equal(head, "");
    if (keep === "both") assert.ok(head.length > 100 && tail.length > 100);
    // the whole text is behind output_id
    const page = JSON.parse(await rsm.call("output_read", { output_id: o.output_id, length: 64 }));
    assert.equal(page.total_bytes, full.length);
    assert.equal(page.data, full.slice(0, 64));
  }
  // under the bound nothing is cut, and the result says so
  const whole = JSON.parse(await rsm.call("test_big_output", { max_output: 1 << 20 }));
  assert.equal(whole.stdout, full);
  assert.equal(whole.truncated, undefined);
});

/** Every tool of rsm as the daemon composes it (with the shell tools of its backends). */
async function builtInTools() {
  await using rsm = await startInProc({ groups: ["meta"] });
  return allTools(rsm.app.shells.backends);
}

/** The bytes of a `tools/list` response as it goes over the wire (the JSON-RPC envelope too). */
const listBytes = (tools: Tool[]) =>
  new TextEncoder().encode(JSON.stringify({ result: { tools }, jsonrpc: "2.0", id: 1 })).length;

Deno.test("in-process: each tool profile lists its groups' tools and output_read", async () => {
  const ALL_TOOLS = await builtInTools();
  const byGroup = new Map<string, string[]>();
  for (const t of ALL_TOOLS) byGroup.set(t.group, [...(byGroup.get(t.group) ?? []), t.name]);
  const always = ALL_TOOLS.filter((t) => t.always).map((t) => t.name);
  assert.deepEqual(always, ["output_read"]);
  for (const group of GROUPS) {
    await using rsm = await startInProc({ groups: [group] });
    const names = (await rsm.listTools()).map((t) => t.name);
    const want = new Set([...(byGroup.get(group) ?? []), ...always]);
    assert.deepEqual(new Set(names), want, `profile ${group}`);
    assert.equal(names.length, want.size, `profile ${group}: no duplicates`);
    // a tool of another group is not served, and the error names the profile
    const other = ALL_TOOLS.find((t) => t.group !== group && !t.always)!;
    const err = await rsm.callError(other.name, {});
    assert.match(err, new RegExp(`unknown tool "${other.name}".*\\(tool profile: ${group}\\)`));
  }
});

Deno.test("in-process: tools/list is ≤ 48,000 bytes in full and ≤ 12,000 for ssh", async () => {
  {
    await using rsm = await startInProc();
    const tools = await rsm.listTools();
    assert.equal(tools.length, allTools(rsm.app.shells.backends).length);
    assert.ok(listBytes(tools) <= 48_000, `full tools/list is ${listBytes(tools)} bytes`);
  }
  {
    await using rsm = await startInProc({ groups: ["ssh"] });
    const tools = await rsm.listTools();
    assert.ok(listBytes(tools) <= 12_000, `ssh tools/list is ${listBytes(tools)} bytes`);
  }
});

Deno.test("in-process: every listed schema is a strict object, without the slimmed limits", async () => {
  await using rsm = await startInProc();
  for (const t of await rsm.listTools()) {
    assert.equal(t.inputSchema.type, "object", t.name);
    assert.equal(t.inputSchema.additionalProperties, false, `${t.name} rejects unknown fields`);
    const text = JSON.stringify(t.inputSchema);
    assert.doesNotMatch(text, /"(maxLength|minLength|maximum|minimum|\$schema)"/, t.name);
  }
});
