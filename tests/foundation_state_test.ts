import assert from "node:assert/strict";
import { join } from "node:path";
import { tempEnv } from "./support/env.ts";
import { StateStore } from "../lib/state/store.ts";
import { silentLogger } from "../lib/log.ts";

Deno.test("state.json survives 200 kill -9s of a process writing it in a loop", async () => {
  await using tmp = await tempEnv();
  const path = join(tmp.root, "state.json");
  const writer = new URL("./support/state_writer.ts", import.meta.url).pathname;
  for (let i = 0; i < 200; i++) {
    const child = new Deno.Command("deno", {
      args: ["run", "-q", "--allow-read", "--allow-write", writer, path],
      env: tmp.env,
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read(); // "ready": at least one write is done
    await new Promise((r) => setTimeout(r, Math.random() * 30));
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    const text = await Deno.readTextFile(path);
    assert.ok(text.length > 0, `round ${i}: state.json is empty`);
    const doc = JSON.parse(text);
    assert.ok(doc.ssh.sessions.length >= 50, `round ${i}: state lost its sessions`);
    // each start (load) removes the temp file a killed write left: never more than one
    const leftovers = [...Deno.readDirSync(tmp.root)].filter((e) => e.name.endsWith(".tmp"));
    assert.ok(leftovers.length <= 1, `round ${i}: ${leftovers.length} temp files piled up`);
  }
});

Deno.test("a corrupt state.json is set aside, not trusted and not lost", async () => {
  await using tmp = await tempEnv();
  const path = join(tmp.root, "state.json");
  await Deno.writeTextFile(path, '{"ssh": {"sessions": [');
  const store = new StateStore(path, { log: silentLogger });
  await store.load();
  assert.equal(store.loaded("ssh"), undefined);
  const aside = [...Deno.readDirSync(tmp.root)].find((e) =>
    e.name.startsWith("state.json.corrupt-")
  );
  assert.ok(aside, "the corrupt file is kept aside for inspection");
});

Deno.test("snapshot is a fence: after flush() the file holds what providers return", async () => {
  await using tmp = await tempEnv();
  const path = join(tmp.root, "state.json");
  const store = new StateStore(path, { log: silentLogger, debounceMs: 10_000 });
  let value = 1;
  store.register("x", { save: () => ({ value }), restore: () => Promise.resolve() });
  store.changed(); // debounced far in the future
  value = 2;
  await store.flush();
  assert.equal(JSON.parse(await Deno.readTextFile(path)).x.value, 2);
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  store.stop();
});

Deno.test("a failed state write keeps the previous state.json and reports the error", async () => {
  await using tmp = await tempEnv();
  const dir = join(tmp.root, "ro");
  await Deno.mkdir(dir);
  const path = join(dir, "state.json");
  const store = new StateStore(path, { log: silentLogger });
  store.register("x", { save: () => ({ v: 1 }), restore: () => Promise.resolve() });
  await store.flush();
  await Deno.chmod(dir, 0o500);
  try {
    if (Deno.uid() === 0) {
      // root ignores directory modes: make the write fail by putting a directory in the way
      await Deno.chmod(dir, 0o700);
      await Deno.rename(path, path + ".keep");
      await Deno.mkdir(path);
      await assert.rejects(store.flush(), /Cannot write state/);
      await Deno.remove(path);
      await Deno.rename(path + ".keep", path);
    } else {
      await assert.rejects(store.flush(), /Cannot write state/);
    }
    assert.equal(JSON.parse(await Deno.readTextFile(path)).x.v, 1);
  } finally {
    await Deno.chmod(dir, 0o700);
    store.stop();
  }
});
