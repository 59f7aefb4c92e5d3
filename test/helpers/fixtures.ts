/**
 * Location of the golden fixtures written by the reference implementations: `$DIASPORA_FIXTURES_DIR`
 * or the copy vendored in test/fixtures (from shared/fixtures; see its README).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root (the nearest ancestor holding package.json). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

export function fixturesDir(): string {
  return process.env['DIASPORA_FIXTURES_DIR'] ?? join(repoRoot(), 'test', 'fixtures');
}
