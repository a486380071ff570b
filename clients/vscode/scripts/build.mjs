// Bundles the extension (Node, CommonJS, `vscode` external) and the webview script
// (browser, IIFE) with esbuild, and writes the licenses of the bundled packages to
// dist/THIRD_PARTY_NOTICES.txt. `--production` minifies and drops source maps.
// `--tests` also bundles test/*.test.ts into build/test/ for `node --test`, with
// `vscode` resolved to the mock in test/mocks/vscode.ts.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';

const production = process.argv.includes('--production');
const tests = process.argv.includes('--tests');
const common = {
  bundle: true,
  minify: production,
  sourcemap: production ? false : 'linked',
  logLevel: 'warning',
  legalComments: 'none',
  metafile: true,
};

const results = await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: ['src/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    external: ['vscode'],
  }),
  esbuild.build({
    ...common,
    entryPoints: ['src/webview/main.ts'],
    outfile: 'dist/webview.js',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  }),
]);

// The packages whose code is in the bundles, and their licenses.
const packages = new Set();
for (const { metafile } of results) {
  for (const input of Object.keys(metafile.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) packages.add(m[1]);
  }
}
const notices = [...packages].sort().map((name) => {
  const dir = path.join('node_modules', name);
  const { version, license } = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const file = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  const text = file ? fs.readFileSync(path.join(dir, file), 'utf8').trim() : `License: ${license}`;
  return `${name} ${version} (${license})\n${'-'.repeat(72)}\n${text}\n`;
});
fs.writeFileSync('dist/THIRD_PARTY_NOTICES.txt', `The parley extension bundles these packages:\n\n${notices.join('\n\n')}`);
if (production) for (const map of ['dist/webview.js.map', 'dist/extension.js.map']) fs.rmSync(map, { force: true });

if (tests) {
  fs.rmSync('build/test', { recursive: true, force: true });
  await esbuild.build({
    entryPoints: fs.readdirSync('test').filter((f) => f.endsWith('.test.ts')).map((f) => `test/${f}`),
    outdir: 'build/test',
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
    // Packages load from node_modules as usual, except `vscode`, which only exists inside VS Code.
    packages: 'external',
    alias: { vscode: './test/mocks/vscode.ts' },
  });
}
