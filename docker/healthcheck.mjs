// The container's HEALTHCHECK: GET /health on the admin API (SHELFGATE_API_LISTEN, through
// loopback when it listens on every address). Exit 0 when the gateway answers "ok", 1 otherwise
// ("degraded": a store is full or failing, see docs/api.md).
const listen = process.env.SHELFGATE_API_LISTEN ?? '127.0.0.1:8080';
const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
if (match === null) {
  console.error(`healthcheck: SHELFGATE_API_LISTEN is not HOST:PORT: ${listen}`);
  process.exit(1);
}
let host = match[1] ?? match[2];
if (host === '0.0.0.0') host = '127.0.0.1';
if (host === '::') host = '::1';
const url = `http://${host.includes(':') ? `[${host}]` : host}:${match[3]}/health`;
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(4000) });
  const body = await response.json();
  if (response.ok && body.status === 'ok') process.exit(0);
  console.error(`healthcheck: ${url}: HTTP ${response.status} ${JSON.stringify(body)}`);
} catch (err) {
  console.error(`healthcheck: ${url}: ${err.message}`);
}
process.exit(1);
