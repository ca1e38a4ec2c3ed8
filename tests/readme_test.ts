/**
 * The README says what rsm serves: its tool table names every tool in the group that serves
 * it, and the work model (readable results and the output store, jobs, shells with their
 * integration) is described with a real example each.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "./support/env.ts";
import { startInProc } from "./support/inproc.ts";
import { allTools } from "../lib/mcp/mod.ts";

const readme = await Deno.readTextFile(join(ROOT, "README.md"));

/** The group table of README "Tools": group → tool names (`_verb` repeats the last prefix). */
function toolTable(): Map<string, string[]> {
  const at = readme.indexOf("| group ");
  assert.ok(at >= 0, "README has the group table");
  const table = new Map<string, string[]>();
  for (const row of readme.slice(at).split("\n").slice(2)) {
    if (!row.startsWith("|")) break;
    const [, group, tools] = row.split("|").map((c) => c.trim());
    const names: string[] = [];
    let prefix = "";
    for (const [, name] of (tools ?? "").matchAll(/`([a-z_]+)`/g)) {
      if (name!.startsWith("_")) names.push(prefix + name!.slice(1));
      else {
        names.push(name!);
        prefix = name!.slice(0, name!.lastIndexOf("_") + 1);
      }
    }
    table.set(group!.replaceAll("`", ""), names.filter((n) => n !== "output_id"));
  }
  return table;
}

Deno.test("README: the tool table names every served tool in its group, and no other", async () => {
  await using rsm = await startInProc({ groups: ["meta"] });
  const want = new Map<string, string[]>();
  for (const t of allTools(rsm.app.shells.backends)) {
    want.set(t.group, [...(want.get(t.group) ?? []), t.name]);
  }
  const table = toolTable();
  assert.deepEqual([...table.keys()].sort(), [...want.keys()].sort(), "groups");
  for (const [group, names] of want) {
    assert.deepEqual([...table.get(group)!].sort(), [...names].sort(), `group ${group}`);
  }
});

Deno.test("README: the work model has a section and a real example for each part", () => {
  /** The text of the `### title` section, up to the next heading of its level or above. */
  const sectionOf = (title: string) => {
    const at = readme.indexOf(`\n### ${title}`);
    assert.ok(at >= 0, `README section "${title}"`);
    const end = readme.slice(at + 1).search(/\n#{1,3} /);
    return readme.slice(at, end < 0 ? undefined : at + 1 + end);
  };
  const results = sectionOf("Readable results and the output store");
  assert.match(results, /--- stdout \(\d+ bytes\) ---/, "a raw text section");
  assert.match(results, /\[… \d+ bytes omitted; output_read output_id=o-\w+ …\]/);
  assert.match(results, /rsm call output_read output_id=o-\w+ .*grep=/);
  const jobs = sectionOf("Jobs: work that outlives a call");
  assert.match(jobs, /wait_ms:=\d+/, "a call that becomes a job");
  assert.match(jobs, /^job_id: j\w+\nstate: running$/m);
  assert.match(jobs, /rsm call job_wait job_id=j\w+/);
  assert.match(jobs, /durable/);
  const shells = sectionOf("Shells: `run`, `write`/`read`, `screen`");
  for (const word of ["OSC 133", "last_exit_code", "cwd", "waiting_for_input", "wait_until"]) {
    assert.ok(shells.includes(word), `shells section mentions ${word}`);
  }
  assert.match(shells, /```[a-z]*\n[^]*?ssh_shell_write[^]*?```/, "an example with write");
});
