// The admin subcommands' view of a running gateway: its REST API (/v1/*) over HTTP, with the
// bearer token when one is set. Every failure becomes a CliError whose message says what to do.

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';
export const TOKEN_ENV = 'SHELFGATE_API_TOKEN';

/** A failure the user can act on: printed as "shelfgate: <message>", exit code `exitCode`. */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export class ApiClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;

  constructor(opts: { baseUrl: string; token?: string | undefined }) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new CliError(`--api ${opts.baseUrl}: not a URL; pass e.g. --api ${DEFAULT_API_URL}`, 2);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`--api ${opts.baseUrl}: must be an http:// or https:// URL`, 2);
    this.baseUrl = url.href.replace(/\/$/, '');
    this.#token = opts.token;
  }

  get<T>(path: string): Promise<T> {
    return this.#request<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.#request<T>('POST', path, body);
  }

  async delete(path: string): Promise<void> {
    await this.#request('DELETE', path);
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: {
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.#token !== undefined ? { authorization: `Bearer ${this.#token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      const why = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' ? '' : ` (${code ?? (err as Error).message})`;
      throw new CliError(`no gateway at ${this.baseUrl}${why}: start one with \`shelfgate start\`, or pass --api URL`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CliError(`${this.baseUrl} answered ${res.status} with something other than JSON: is it a shelfgate admin API?`);
    }
    if (res.ok) return json as T;
    const message = (json as { error?: { message?: string } } | undefined)?.error?.message ?? `HTTP ${res.status}`;
    if (res.status === 401) {
      throw new CliError(
        this.#token === undefined
          ? `the gateway requires a token: pass --token TOKEN or set ${TOKEN_ENV} (on the gateway's machine: shelfgate status --show-token --data-dir DIR)`
          : `the gateway refused the token: check --token / ${TOKEN_ENV} (on the gateway's machine: shelfgate status --show-token --data-dir DIR)`,
      );
    }
    if (res.status === 404 && (json as { error?: { code?: string } } | undefined)?.error?.code === undefined) {
      throw new CliError(`${this.baseUrl}${path}: not found — is ${this.baseUrl} a shelfgate admin API?`);
    }
    throw new CliError(message);
  }
}
