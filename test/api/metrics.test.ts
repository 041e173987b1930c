// GET /metrics parses as Prometheus text exposition format 0.0.4 and its counters move when a
// real iSCSI client (qemu-io over libiscsi) reads and writes.
import t from 'tap';
import { startAdminGateway } from '../helpers/admin-gateway.js';
import { TestInitiator } from '../helpers/initiator.js';
import { runTool } from '../helpers/libiscsi.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  types: Map<string, string>;
  helps: Map<string, string>;
  samples: Sample[];
}

/** A strict parser of the text format: every line is a comment (HELP/TYPE), blank, or a sample
 *  `name{label="value",…} number`; label values use \\, \" and \n escapes; each family's TYPE
 *  comes before its samples and only once. Throws on anything else. */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const samples: Sample[] = [];
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  for (const [index, line] of lines.entries()) {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment !== null) {
      const [, kind, name, rest] = comment;
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`${where}: unknown type`);
        if (types.has(name)) throw new Error(`${where}: second TYPE for ${name}`);
        if (samples.some((s) => s.name === name)) throw new Error(`${where}: TYPE after samples`);
        types.set(name, rest);
      } else {
        helps.set(name, rest);
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (sample === null) throw new Error(`${where}: not a sample`);
    const [, name, labelText, valueText] = sample;
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && valueText !== 'NaN') throw new Error(`${where}: bad value`);
    const labels: Record<string, string> = {};
    let rest = labelText ?? '';
    while (rest !== '') {
      const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
      if (label === null) throw new Error(`${where}: bad labels`);
      labels[label[1]] = label[2].replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(label[0].length);
    }
    if (types.get(name) === 'counter' && !name.endsWith('_total')) throw new Error(`${where}: counters end in _total`);
    samples.push({ name, labels, value });
  }
  return { types, helps, samples };
}

function value(exposition: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return exposition.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

t.test('Metrics.Parser rejects what is not the text format', async (t) => {
  t.throws(() => parseExposition('x 1'));
  t.throws(() => parseExposition('x{a="b} 1\n'));
  t.throws(() => parseExposition('# TYPE x counter\nx 1\n'));
  t.same(parseExposition('# TYPE x_total counter\nx_total{a="q\\"\\\\"} 2\n').samples, [{ name: 'x_total', labels: { a: 'q"\\' }, value: 2 }]);
});

t.test('Metrics.CountersMove: qemu-io writes and reads through iSCSI', async (t) => {
  const gateway = await startAdminGateway(t, { volumes: ['io:1GiB', 'idle:1GiB'], listen: false });
  const scrape = async (): Promise<Exposition> => {
    const res = await gateway.inject({ method: 'GET', url: '/metrics' });
    t.equal(res.statusCode, 200);
    t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    return parseExposition(res.body);
  };
  const before = await scrape();
  t.equal(before.types.get('shelfgate_volume_write_bytes_total'), 'counter');
  t.equal(before.types.get('shelfgate_iscsi_sessions'), 'gauge');
  t.equal(value(before, 'shelfgate_volumes'), 2);
  t.equal(value(before, 'shelfgate_volume_size_bytes', { volume: 'io', type: 'stored' }), 2 ** 30);
  t.equal(value(before, 'shelfgate_volume_write_bytes_total', { volume: 'io' }), 0);
  t.equal(value(before, 'shelfgate_iscsi_sessions'), 0);
  for (const absent of ['cache', 'dirty', 'upload']) {
    t.notOk([...before.types.keys()].some((name) => name.includes(absent)), `no ${absent} metric until it is real`);
  }

  const url = `iscsi://127.0.0.1:${gateway.iscsiPort}/iqn.2026-11.dev.shelfgate:shelfgate-io/0`;
  const io = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0xab 0 1M', '-c', 'read -P 0xab 0 1M', url], { timeoutMs: 60_000 });
  t.equal(io.exitCode, 0, 'qemu-io', { stderr: io.stderr, stdout: io.stdout });
  t.match(io.stdout, /wrote 1048576\/1048576 bytes/);
  t.match(io.stdout, /read 1048576\/1048576 bytes/);

  const after = await scrape();
  t.equal(value(after, 'shelfgate_volume_write_bytes_total', { volume: 'io' }), 1048576, 'every byte written counted once');
  t.ok((value(after, 'shelfgate_volume_write_ops_total', { volume: 'io' }) ?? 0) >= 1);
  t.ok((value(after, 'shelfgate_volume_read_bytes_total', { volume: 'io' }) ?? 0) >= 1048576, 'the read (and probes) counted');
  t.ok((value(after, 'shelfgate_volume_read_ops_total', { volume: 'io' }) ?? 0) >= 1);
  t.equal(value(after, 'shelfgate_volume_write_bytes_total', { volume: 'idle' }), 0, 'the other volume did not move');
  t.equal(value(after, 'shelfgate_volume_io_errors_total', { volume: 'io' }), 0);

  const initiator = await TestInitiator.connect('127.0.0.1', gateway.iscsiPort);
  t.teardown(() => initiator.destroy());
  await initiator.login({ initiatorName: 'iqn.2026-11.test:metrics', targetName: 'iqn.2026-11.dev.shelfgate:shelfgate-idle' });
  const loggedIn = await scrape();
  t.equal(value(loggedIn, 'shelfgate_iscsi_sessions'), 1);
  t.equal(value(loggedIn, 'shelfgate_iscsi_connections'), 1);
  t.equal(value(loggedIn, 'shelfgate_volume_sessions', { volume: 'idle' }), 1);
  t.equal(value(loggedIn, 'shelfgate_volume_sessions', { volume: 'io' }), 0);
});
