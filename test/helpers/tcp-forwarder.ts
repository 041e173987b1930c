// A TCP port forwarder, as a NAT or a container engine's published port is: initiators connect to
// its outside address and port, and each connection is relayed to the gateway's inside portal.
import net from 'node:net';

export interface TcpForwarder {
  /** The outside address and port initiators are told about. */
  readonly host: string;
  readonly port: number;
  /** Connections relayed so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/** Listens on `host` (an ephemeral port) and relays every connection to `inside()`, which is read
 *  per connection (the gateway may start after the forwarder). */
export async function startTcpForwarder(host: string, inside: () => { host: string; port: number }): Promise<TcpForwarder> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((outside) => {
    connections++;
    const target = inside();
    const upstream = net.connect(target.port, target.host);
    for (const socket of [outside, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        outside.destroy();
        upstream.destroy();
      });
    }
    outside.pipe(upstream);
    upstream.pipe(outside);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host,
    port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
