/**
 * A logged-in web console client for tests and the benchmark: plain `fetch` with the login
 * cookie a one-time link gives (the way `rsm console` and a browser get it).
 */

/** What {@link consoleSession} returns. */
export interface ConsoleSession {
  /** The `rsm_web=…` cookie. */
  cookie: string;
  /** Fetches a daemon path (e.g. `/web/console`) as the logged-in person. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** Asks the daemon of `handle` for a console login link (what `rsm console` prints). */
export async function consoleLink(handle: { url: string; token: string }): Promise<string> {
  const r = await fetch(`${handle.url}/console-link`, {
    method: "POST",
    headers: { authorization: `Bearer ${handle.token}` },
  });
  if (!r.ok) throw new Error(`/console-link answered ${r.status}: ${await r.text()}`);
  return (await r.json()).url;
}

/** Logs in to the daemon of `handle` with a fresh one-time link. */
export async function consoleSession(
  handle: { url: string; token: string },
): Promise<ConsoleSession> {
  const link = await consoleLink(handle);
  const r = await fetch(link, { redirect: "manual" });
  await r.body?.cancel();
  const cookie = /^(rsm_web=[0-9a-f]+)/.exec(r.headers.get("set-cookie") ?? "")?.[1];
  if (r.status !== 303 || !cookie) throw new Error(`the login link answered ${r.status}`);
  return {
    cookie,
    fetch: (path, init = {}) =>
      fetch(`${handle.url}${path}`, { ...init, headers: { ...init.headers, cookie } }),
  };
}
