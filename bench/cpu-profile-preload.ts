// Loaded into the gateway with NODE_OPTIONS="--import …/dist/bench/cpu-profile-preload.js" when
// the benchmark profiles it (BENCH_CPU_PROFILE): `--cpu-prof` is not allowed in NODE_OPTIONS and
// would profile start-up and shutdown too, so this profiles only between two SIGUSR2s.
// First SIGUSR2: start the V8 sampling profiler (marker file started-N); second: stop it and
// write N.cpuprofile (Chrome DevTools format) into SHELFGATE_CPU_PROFILE_DIR. Does nothing when
// that variable is unset.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.SHELFGATE_CPU_PROFILE_DIR;
if (dir !== undefined && dir !== '') {
  const session = new Session();
  session.connect();
  let running = false;
  let sequence = 0;
  process.on('SIGUSR2', () => {
    if (!running) {
      running = true;
      sequence++;
      const n = sequence;
      session.post('Profiler.enable', () => {
        session.post('Profiler.setSamplingInterval', { interval: 500 }, () => {
          session.post('Profiler.start', () => writeFileSync(join(dir, `started-${n}`), ''));
        });
      });
    } else {
      running = false;
      const n = sequence;
      session.post('Profiler.stop', (err, result) => {
        writeFileSync(join(dir, `${n}.cpuprofile`), err === null ? JSON.stringify(result.profile) : JSON.stringify({ error: String(err) }));
        writeFileSync(join(dir, `stopped-${n}`), '');
      });
    }
  });
}
