// Bundles the extension host code into dist/extension.js and the webview scripts into dist/media.
const esbuild = require('esbuild');

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/** Prints build problems in a form VS Code's problem matchers understand. */
const problemReporter = {
  name: 'problem-reporter',
  setup(build) {
    build.onEnd((result) => {
      for (const { text, location } of result.errors) {
        console.error(`✘ [ERROR] ${text}`);
        if (location) console.error(`    ${location.file}:${location.line}:${location.column}:`);
      }
    });
  },
};

/** Resolves the SSH target to the lazily loaded dist/ssh.js bundle (built from src/lazy/ssh.ts). */
const sharedSshBundle = {
  name: 'shared-ssh-bundle',
  setup(build) {
    build.onResolve({ filter: /\/core\/ssh\/sshTarget$/ }, () => ({ path: './ssh.js', external: true }));
  },
};

/** Marks a built script executable, for the npm bin. */
function executable(file) {
  return {
    name: 'executable',
    setup(build) {
      build.onEnd((result) => {
        if (result.errors.length === 0) require('node:fs').chmodSync(file, 0o755);
      });
    },
  };
}

const shared = {
  bundle: true,
  minify: production,
  sourcemap: !production,
  sourcesContent: false,
  logLevel: 'warning',
  plugins: [problemReporter],
};

async function main() {
  const contexts = await Promise.all([
    esbuild.context({
      ...shared,
      entryPoints: { extension: 'src/extension.ts', ssh: 'src/lazy/ssh.ts', markdown: 'src/lazy/markdown.ts' },
      outdir: 'dist',
      format: 'cjs',
      platform: 'node',
      target: 'node18',
      // ssh2 loads its optional native parts inside try/catch and falls back to pure JS.
      // ./ssh.js and ./markdown.js are the lazily required bundles built here too (src/ui/lazyModules.ts).
      external: ['vscode', 'cpu-features', '*.node', './ssh.js', './markdown.js', './organiser.js'],
    }),
    // The organiser's command-line tool, also loaded on first use by the organiser commands. It shares
    // ssh2 with the extension through dist/ssh.js instead of carrying a second copy.
    esbuild.context({
      ...shared,
      entryPoints: { organiser: 'src/organiser/cli.ts' },
      outdir: 'dist',
      format: 'cjs',
      platform: 'node',
      target: 'node18',
      banner: { js: '#!/usr/bin/env node' },
      external: ['vscode', 'cpu-features', '*.node'],
      plugins: [problemReporter, sharedSshBundle, executable('dist/organiser.js')],
    }),
    esbuild.context({
      ...shared,
      entryPoints: ['src/webview/sessionView.ts'],
      outfile: 'dist/media/sessionView.js',
      format: 'iife',
      platform: 'browser',
      target: 'es2022',
    }),
  ]);
  if (watch) {
    await Promise.all(contexts.map((c) => c.watch()));
    return;
  }
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
