// An HTTP proxy on 127.0.0.1 in front of a real endpoint (s3rver, the Glacier test endpoint, Ceph
// RGW) that answers chosen requests with an error instead of forwarding them: the cloud's failures
// as the client really sees them (status, error body, headers), without mocking the SDK.
//
//   const proxy = await FaultProxy.start(endpoint.url);   // point the client at proxy.url
//   proxy.fail({ status: 500, code: 'InternalError' });   // every request from now on
//   proxy.fail({ status: 403, code: 'AccessDenied', match: (r) => r.method === 'PUT' });
//   proxy.heal();
//
// The request is forwarded byte for byte with its Host header unchanged, so SigV4 signatures made
// for the proxy's address still verify at the endpoint. Error bodies use S3's XML shape or, with
// `json: true`, Glacier's JSON shape ({code, message, type} and x-amzn-ErrorType).

import { createServer, request, type IncomingMessage, type Server } from 'node:http';

export interface ProxiedRequest {
  method: string;
  url: string;
}

export interface Fault {
  status: number;
  /** The error code (S3 `<Code>`, Glacier `code` / x-amzn-ErrorType). */
  code: string;
  /** Glacier's JSON error shape instead of S3's XML. */
  json?: boolean;
  /** Which requests fail; default all. */
  match?: (req: ProxiedRequest) => boolean;
}

export class FaultProxy {
  /** Requests that reached the proxy, failed or forwarded, in order. */
  readonly requests: Array<ProxiedRequest & { failedWith?: number }> = [];
  readonly #server: Server;
  readonly #target: URL;
  #fault: Fault | null = null;

  private constructor(server: Server, target: URL) {
    this.#server = server;
    this.#target = target;
  }

  static async start(targetUrl: string): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(server, new URL(targetUrl));
    server.on('request', (req, res) => proxy.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  /** Requests failed with an injected error. */
  get failedCount(): number {
    return this.requests.filter((r) => r.failedWith !== undefined).length;
  }

  fail(fault: Fault): void {
    this.#fault = fault;
  }

  heal(): void {
    this.#fault = null;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  #handle(req: IncomingMessage, res: import('node:http').ServerResponse): void {
    const seen: ProxiedRequest & { failedWith?: number } = { method: req.method ?? '', url: req.url ?? '' };
    this.requests.push(seen);
    const fault = this.#fault;
    if (fault !== null && (fault.match === undefined || fault.match(seen))) {
      seen.failedWith = fault.status;
      req.resume();
      req.on('end', () => {
        const message = `injected by the test's fault proxy`;
        res.statusCode = fault.status;
        if (fault.json === true) {
          res.setHeader('content-type', 'application/json');
          res.setHeader('x-amzn-errortype', fault.code);
          res.end(JSON.stringify({ code: fault.code, message, type: fault.status >= 500 ? 'Server' : 'Client' }));
        } else {
          res.setHeader('content-type', 'application/xml');
          res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code}</Code><Message>${message}</Message></Error>`);
        }
      });
      return;
    }
    const upstream = request(
      { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
}
