// The version the API reports (DescribeGatewayInformation SoftwareVersion, OpenAPI info): the
// nearest shelfgate package.json above this module, in the source tree or in dist/.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function softwareVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'shelfgate' && pkg.version !== undefined) return pkg.version;
    } catch {
      // no package.json here; look further up
    }
    const parent = dirname(dir);
    if (parent === dir) return '0.0.0';
    dir = parent;
  }
}
