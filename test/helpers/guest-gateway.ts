// The gateway the VM suites' guests talk to: a real `shelfgate start` process on 127.0.0.1 (the
// guest reaches it as 10.0.2.2 through QEMU's user-mode network), a volume, a small library of
// tapes, the admin API with an explicit token, and helpers for the shelf (export → ARCHIVED →
// retrieval) the guest's scripts wait for.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { startGateway, type GatewayProcess } from './gateway-process.js';

export const API_TOKEN = 'vm-suite-token-0123456789';
const POLL_MS = 200;

export interface GuestGateway {
  gateway: GatewayProcess;
  /** GET/POST on the admin REST API with the token; the parsed JSON body. */
  api(method: 'GET' | 'POST', path: string): Promise<{ status: number; body: unknown }>;
  tapeStatus(barcode: string): Promise<string | undefined>;
  /** Polls until the tape has `status` (or `timeoutMs` passed: throws with the gateway's log). */
  waitForTapeStatus(barcode: string, status: string, timeoutMs: number): Promise<void>;
}

export async function startGuestGateway(
  t: Test,
  opts: { volumes?: string[]; tapes: string; slots: string; changerType?: string },
): Promise<GuestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-vm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'shelfgate.json');
  await writeFile(configFile, JSON.stringify({ api: { token: API_TOKEN }, tapeLibrary: { archive: { type: 'local', retrievalDelayMs: 500 } } }));
  const gateway = await startGateway({
    configFile,
    dataDir: join(dir, 'data'),
    ...(opts.volumes ? { volumes: opts.volumes } : {}),
    extraArgs: ['--tapes', opts.tapes, '--tape-slots', opts.slots, '--log-level', 'warn', ...(opts.changerType ? ['--changer-type', opts.changerType] : [])],
  });
  t.teardown(() => gateway.dispose());
  const api = async (method: 'GET' | 'POST', path: string) => {
    const response = await fetch(`http://127.0.0.1:${gateway.apiPort}${path}`, { method, headers: { authorization: `Bearer ${API_TOKEN}` } });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  };
  const tapeStatus = async (barcode: string) => {
    const { status, body } = await api('GET', `/v1/tapes/${barcode}`);
    return status === 200 ? (body as { status: string }).status : undefined;
  };
  return {
    gateway,
    api,
    tapeStatus,
    async waitForTapeStatus(barcode, status, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if ((await tapeStatus(barcode)) === status) return;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      throw new Error(`tape ${barcode} is ${await tapeStatus(barcode)}, never ${status}\n${gateway.stderr()}`);
    },
  };
}

/** Waits for a file the guest writes into its job folder (9p), up to `timeoutMs`. */
export async function waitForJobFile(path: string, timeoutMs: number, stillRunning: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && stillRunning()) {
    if (existsSync(path)) return true;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return existsSync(path);
}

/** The host's side of a guest's export: once the guest names the exported tape in
 *  <jobDir>/exported, waits until it is ARCHIVED on the shelf and, with `retrieve`, retrieves it
 *  and tells the guest so in <jobDir>/retrieved. Returns the statuses seen, in order. */
export async function followExport(
  gw: GuestGateway,
  jobDir: string,
  running: () => boolean,
  opts: { retrieve: boolean },
): Promise<string[]> {
  const seen: string[] = [];
  if (!(await waitForJobFile(join(jobDir, 'exported'), 30 * 60_000, running))) return seen;
  const barcode = (await readFile(join(jobDir, 'exported'), 'utf8')).trim();
  await gw.waitForTapeStatus(barcode, 'ARCHIVED', 120_000);
  seen.push('ARCHIVED');
  if (!opts.retrieve) return seen;
  const retrieve = await gw.api('POST', `/v1/tapes/${barcode}/retrieve`);
  if (retrieve.status !== 200) throw new Error(`retrieve ${barcode}: ${retrieve.status} ${JSON.stringify(retrieve.body)}`);
  await gw.waitForTapeStatus(barcode, 'RETRIEVED', 120_000);
  seen.push('RETRIEVED');
  await writeFile(join(jobDir, 'retrieved'), barcode);
  return seen;
}
