/**
 * The console's side of a shell (lib/term/watch.ts): viewers see every chunk, a late viewer
 * gets the recent output, agent writes hold back while a person types, and the next read is
 * told once.
 */
import assert from "node:assert/strict";
import { PERSON_QUIET_MS, RECENT_BYTES, ShellWatch } from "../lib/term/watch.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("viewers get every chunk until they unsubscribe; the recent output is bounded", () => {
  const w = new ShellWatch("sh");
  const seen: string[] = [];
  const off = w.subscribe((c) => seen.push(new TextDecoder().decode(c)));
  w.output(bytes("a"));
  w.output(bytes("b"));
  off();
  w.output(bytes("c"));
  assert.deepEqual(seen, ["a", "b"]);
  assert.equal(w.viewers, 0);
  assert.equal(new TextDecoder().decode(w.recent()), "abc");
  for (let i = 0; i < 40; i++) w.output(new Uint8Array(16 * 1024).fill(0x78));
  assert.ok(w.recent().length <= RECENT_BYTES, `${w.recent().length}`);
  assert.ok(w.recent().length > RECENT_BYTES - 16 * 1024);
});

Deno.test("an agent write waits for a typing person, or fails with a clear message", async () => {
  const w = new ShellWatch("sh1");
  await w.agentTurn(0); // nobody typed: at once
  assert.equal(w.takePersonTyped(), false);
  w.personTyped();
  assert.equal(w.personActive(), true);
  await assert.rejects(w.agentTurn(100), (err: Error) => {
    assert.match(err.message, /a person is typing in this shell/);
    assert.match(err.message, /sh1/);
    return true;
  });
  w.personTypedAt = Date.now() - PERSON_QUIET_MS + 200; // typed a while ago
  const t0 = Date.now();
  await w.agentTurn(5000);
  const waited = Date.now() - t0;
  assert.ok(waited >= 150 && waited < 2000, `waited ${waited} ms`);
  assert.equal(w.takePersonTyped(), true, "the next read is told");
  assert.equal(w.takePersonTyped(), false, "once");
});

Deno.test("an agent's wait for a person ends when the call is cancelled", async () => {
  const w = new ShellWatch("sh");
  w.personTyped();
  const ac = new AbortController();
  const p = w.agentTurn(60_000, ac.signal);
  ac.abort(new Error("cancelled"));
  await assert.rejects(p, /cancelled/);
});
