import assert from "node:assert/strict";
import { waitAtMost } from "../lib/timeout.ts";

// sanitizeOps is on for each test (whatever the command line says): a timer still pending when
// the test ends fails it, so a race that left its one-hour timer behind would fail here.
const HOUR = 3_600_000;

Deno.test({
  name: "waitAtMost returns as soon as the work ends and leaves no timer behind",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const t0 = performance.now();
    assert.equal(await waitAtMost(Promise.resolve("done"), HOUR), true);
    const quick = new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(await waitAtMost(quick, HOUR), true);
    assert.ok(performance.now() - t0 < 5000, "returned without waiting for the hour");
  },
});

Deno.test({
  name: "waitAtMost gives up after the time and says so",
  sanitizeOps: true,
  async fn() {
    const t0 = performance.now();
    assert.equal(await waitAtMost(new Promise(() => {}), 20), false);
    assert.ok(performance.now() - t0 >= 15);
  },
});

Deno.test({
  name: "waitAtMost stops at an abort and removes its timer and listener",
  sanitizeOps: true,
  async fn() {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 5);
    assert.equal(await waitAtMost(new Promise(() => {}), HOUR, { signal: ac.signal }), false);
    assert.equal(await waitAtMost(Promise.resolve(), HOUR, { signal: ac.signal }), false);
    // a long-lived signal keeps no listener from a race that ended
    const daemon = new AbortController();
    let added = 0;
    let removed = 0;
    const add = daemon.signal.addEventListener.bind(daemon.signal);
    const remove = daemon.signal.removeEventListener.bind(daemon.signal);
    daemon.signal.addEventListener = (...args: Parameters<typeof add>) => (added++, add(...args));
    daemon.signal.removeEventListener = (...args: Parameters<typeof remove>) => (
      removed++, remove(...args)
    );
    for (let i = 0; i < 3; i++) {
      await waitAtMost(Promise.resolve(), HOUR, { signal: daemon.signal });
    }
    assert.equal(added, 3);
    assert.equal(removed, 3);
  },
});

Deno.test({
  name: "waitAtMost passes on a failure of the work and still clears its timer",
  sanitizeOps: true,
  async fn() {
    await assert.rejects(waitAtMost(Promise.reject(new Error("boom")), HOUR), /boom/);
  },
});
