// The REST admin API (/v1) of a gateway started by a test, with the bearer token the test put in
// the gateway's configuration (`api.token`).
export interface RestReply<T> {
  status: number;
  body: T;
}

export function restClient(apiPort: number, token: string) {
  const call = async <T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<RestReply<T>> => {
    const res = await fetch(`http://127.0.0.1:${apiPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  };
  return {
    get: <T>(path: string) => call<T>('GET', path),
    post: <T>(path: string, body: unknown) => call<T>('POST', path, body),
    delete: <T>(path: string) => call<T>('DELETE', path),
  };
}

/** Polls GET `path` until `done(body)` (no timing asserted; bounded so a hang fails the test). */
export async function pollUntil<T>(get: () => Promise<RestReply<T>>, done: (body: T) => boolean, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await get();
    if (reply.status === 200 && done(reply.body)) return reply.body;
    if (Date.now() > deadline) throw new Error(`condition not reached: last answer ${reply.status} ${JSON.stringify(reply.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
