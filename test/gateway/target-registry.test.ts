// GatewayTargetRegistry: volume targets (changing at run time) beside the tape library's fixed ones.
import t from 'tap';
import type { TargetConfig, TargetRegistry } from '../../iscsi/device.js';
import { GatewayTargetRegistry, staticTargetRegistry } from '../../src/gateway/target-registry.js';

const target = (name: string): TargetConfig => ({ name, luns: new Map() });

t.test('TargetRegistry.VolumesThenLibrary', async (t) => {
  const volumes = new Map<string, TargetConfig>([['iqn.x:gw-vol1', target('iqn.x:gw-vol1')]]);
  const volumeRegistry: TargetRegistry = { list: () => [...volumes.values()], get: (name) => volumes.get(name) };
  const library = staticTargetRegistry([target('iqn.x:gw-mediachanger'), target('iqn.x:gw-tapedrive-01')]);
  const registry = new GatewayTargetRegistry([volumeRegistry, library]);

  t.same(registry.list().map((x) => x.name), ['iqn.x:gw-vol1', 'iqn.x:gw-mediachanger', 'iqn.x:gw-tapedrive-01'], 'SendTargets order');
  t.equal(registry.get('iqn.x:gw-tapedrive-01')?.name, 'iqn.x:gw-tapedrive-01');
  t.equal(registry.get('iqn.x:gw-nothing'), undefined);

  // A volume added or removed at run time (admin API) shows at once.
  volumes.set('iqn.x:gw-vol2', target('iqn.x:gw-vol2'));
  volumes.delete('iqn.x:gw-vol1');
  t.same(registry.list().map((x) => x.name), ['iqn.x:gw-vol2', 'iqn.x:gw-mediachanger', 'iqn.x:gw-tapedrive-01']);
  t.equal(registry.get('iqn.x:gw-vol1'), undefined);
  t.equal(registry.get('iqn.x:gw-vol2')?.name, 'iqn.x:gw-vol2');
});
