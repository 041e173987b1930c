import t from 'tap';
import { createLogger } from '../src/log.js';

function sink(): { lines: string[]; write(line: string): void } {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(line) };
}

t.test('Log.Human: level filter, fields, child bindings', async (t) => {
  const out = sink();
  const log = createLogger({ level: 'info', format: 'human', stream: out });
  log.debug('hidden');
  log.info('volume created', { volume: 'vol1', sizeBytes: 1024, note: 'has space' });
  log.child({ component: 'iscsi' }).warn('login failed', { err: Object.assign(new Error('bad'), { code: 'X' }) });
  t.equal(out.lines.length, 2);
  t.match(out.lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  volume created volume=vol1 sizeBytes=1024 note="has space"\n$/);
  t.match(out.lines[1], / WARN  login failed component=iscsi err="\{\\"name\\":\\"Error\\",\\"message\\":\\"bad\\",\\"code\\":\\"X\\"\}"\n$/);
});

t.test('Log.Json: one object per line', async (t) => {
  const out = sink();
  const log = createLogger({ level: 'debug', format: 'json', stream: out });
  log.debug('tick', { n: 1n });
  const line = JSON.parse(out.lines[0]) as Record<string, unknown>;
  t.same({ ...line, time: 'T' }, { time: 'T', level: 'debug', msg: 'tick', n: '1' });
  createLogger({ level: 'silent', format: 'json', stream: out }).error('nothing');
  t.equal(out.lines.length, 1);
});
