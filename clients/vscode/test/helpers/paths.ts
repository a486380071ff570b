import * as fs from 'node:fs';
import * as path from 'node:path';

/** The extension's root (where its package.json is), wherever the bundled test runs from. */
function findRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'parley-vscode') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no parley-vscode package.json above ${start}`);
  }
}

export const ROOT = findRoot(__dirname);
export const TEST_DIR = path.join(ROOT, 'test');
export const FIXTURES = path.join(TEST_DIR, 'fixtures');
/** Screenshots and other test output (gitignored). */
export const OUT = path.join(ROOT, 'test-output');
