// `shelfgate status`: the gateway, its iSCSI sessions and (when enabled) its tape library.

import type { CommandContext } from './admin-commands.js';
import { CliError } from './api-client.js';
import { formatTable } from './table.js';

interface Gateway {
  gatewayId: string;
  gatewayARN: string;
  name: string;
  region: string;
  softwareVersion: string;
  iscsi: { host: string; port: number; advertise?: Array<{ host: string; port: number }> };
  volumeCount: number;
  sessionCount: number;
}

interface Session {
  initiatorName: string;
  targetName: string;
  isid: string;
  tsih: number;
  connections: number;
}

interface Library {
  changerType: string;
  pendingChangerType?: string;
  changerTarget: string;
  drives: Array<{ index: number; barcode?: string; readBytes: number; writeBytes: number }>;
  elements: Array<{ type: string; full: boolean }>;
}

/** " (advertised as 192.0.2.10:3260)" when iscsi.advertise is set. */
function advertised(portals: Array<{ host: string; port: number }> | undefined): string {
  if (portals === undefined || portals.length === 0) return '';
  return ` (advertised as ${portals.map((p) => `${p.host.includes(':') ? `[${p.host}]` : p.host}:${p.port}`).join(', ')})`;
}

export async function statusCommand(ctx: CommandContext): Promise<void> {
  const [gateway, { sessions }] = await Promise.all([
    ctx.client.get<Gateway>('/v1/gateway'),
    ctx.client.get<{ sessions: Session[] }>('/v1/sessions'),
  ]);
  let library: Library | undefined;
  try {
    library = await ctx.client.get<Library>('/v1/library');
  } catch (err) {
    // A gateway without a tape library answers 404 here; anything else is a real failure.
    if (!(err instanceof CliError && /no tape library/.test(err.message))) throw err;
  }
  if (ctx.json) {
    // A library has thousands of elements: counts unless --elements asks for the list.
    const shown = library === undefined || ctx.values.elements === true ? library : summarizeElements(library);
    ctx.print(`${JSON.stringify({ gateway, sessions, ...(shown !== undefined ? { library: shown } : {}) }, null, 2)}\n`);
    return;
  }
  let text =
    `gateway   ${gateway.name} (${gateway.gatewayId}), shelfgate ${gateway.softwareVersion}\n` +
    `ARN       ${gateway.gatewayARN}\n` +
    `iSCSI     ${gateway.iscsi.host}:${gateway.iscsi.port}${advertised(gateway.iscsi.advertise)}\n` +
    `volumes   ${gateway.volumeCount}\n`;
  if (library !== undefined) {
    const count = (type: string, full?: boolean) => library.elements.filter((e) => e.type === type && (full === undefined || e.full === full)).length;
    const loaded = library.drives.filter((d) => d.barcode !== undefined).length;
    text +=
      `library   ${library.changerType}${library.pendingChangerType !== undefined ? ` (${library.pendingChangerType} after the next start)` : ''}, ` +
      `${count('storage', true)}/${count('storage')} slots full, ${count('import-export', true)}/${count('import-export')} I/E, ` +
      `${loaded}/${library.drives.length} drives loaded\n`;
  }
  text += `sessions  ${sessions.length}\n`;
  if (sessions.length > 0) {
    text += formatTable(
      ['INITIATOR', 'TARGET', 'ISID', 'TSIH', 'CONNECTIONS'],
      sessions.map((s) => [s.initiatorName, s.targetName, s.isid, s.tsih, s.connections]),
    );
  }
  ctx.print(text);
}

/** The library with `elements` replaced by `elementCounts`: { storage: { total, full }, … }. */
function summarizeElements(library: Library): Omit<Library, 'elements'> & { elementCounts: Record<string, { total: number; full: number }> } {
  const { elements, ...rest } = library;
  const elementCounts: Record<string, { total: number; full: number }> = {};
  for (const element of elements) {
    const count = (elementCounts[element.type] ??= { total: 0, full: 0 });
    count.total++;
    if (element.full) count.full++;
  }
  return { ...rest, elementCounts };
}
