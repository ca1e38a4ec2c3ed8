/**
 * A process that writes `state.json` through the real StateStore in a tight loop, for the
 * kill -9 test. Prints "ready" once the first write is on disk. Usage: state_writer.ts PATH
 */
import { StateStore } from "../../lib/state/store.ts";
import { silentLogger } from "../../lib/log.ts";

const path = Deno.args[0];
if (path === undefined) throw new Error("usage: state_writer.ts PATH");
const store = new StateStore(path, { log: silentLogger, debounceMs: 0 });
let n = 0;
store.register("ssh", {
  save: () => ({
    sessions: Array.from({ length: 50 + (n % 50) }, (_, i) => ({
      id: `s${i}`,
      spec: { addresses: [`10.0.0.${i % 250}:22`], user: "deploy", keepalive: "15s" },
      round: n,
    })),
  }),
  restore: () => Promise.resolve(),
});
await store.load(); // as the daemon does at start: removes temp files of killed writes
await store.flush();
console.log("ready");
while (true) {
  n++;
  await store.flush();
}
