/**
 * A logged-in web console client for tests and the benchmark: plain `fetch` with the login
 * the daemon's pages need.
 */

/** What {@link consoleSession} returns. */
export interface ConsoleSession {
  /** Fetches a daemon path (e.g. `/web/console`) as the logged-in person. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** Logs in to the daemon of `handle` and returns a client for its pages. */
export function consoleSession(handle: { url: string; token: string }): Promise<ConsoleSession> {
  return Promise.resolve({
    fetch: (path, init = {}) =>
      fetch(`${handle.url}${path}`, {
        ...init,
        headers: { ...init.headers, authorization: `Bearer ${handle.token}` },
      }),
  });
}
