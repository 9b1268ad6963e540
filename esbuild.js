// Bundles the extension host code, the organiser's tool and the webview script into dist/. Every bundle is
// one row of the table below; nothing else needs to agree with it.
const path = require('node:path');
const esbuild = require('esbuild');

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/**
 * The bundles.
 *   name      dist/NAME.js
 *   entry     the source it is built from
 *   platform  'node' (the extension host, the command line) or 'browser' (a webview)
 *   lazy      other bundles do not carry this one's code: an import of `entry`, or of a module in
 *             `provides`, becomes a require of ./NAME.js at run time (in a function, to load it on first use:
 *             src/ui/lazyModules.ts). Their errors are recognised by brand, not instanceof (src/core/errors.ts).
 *   provides  modules whose code other bundles take from this one instead of carrying a copy
 *   bin       an executable script (the npm bin)
 */
const bundles = [
  { name: 'extension', entry: 'src/extension.ts', platform: 'node' },
  // ssh2 is the largest part of the extension, and the local target never needs it.
  { name: 'ssh', entry: 'src/lazy/ssh.ts', platform: 'node', lazy: true, provides: ['src/core/ssh/sshTarget.ts'] },
  // markdown-it and KaTeX are only needed to show the instructions.
  { name: 'markdown', entry: 'src/lazy/markdown.ts', platform: 'node', lazy: true },
  // The organiser's command-line tool, also what the extension's organiser commands load on first use.
  { name: 'organiser', entry: 'src/organiser/cli.ts', platform: 'node', lazy: true, bin: true },
  { name: 'media/sessionView', entry: 'src/webview/sessionView.ts', platform: 'browser' },
  { name: 'media/endQuestions', entry: 'src/webview/endQuestions.ts', platform: 'browser' },
];

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

/** In bundle `self`, an import of another lazy bundle's code becomes a require of that bundle at run time. */
function lazyBundles(self) {
  const byFile = new Map();
  for (const b of bundles) {
    if (!b.lazy || b === self) continue;
    for (const file of [b.entry, ...(b.provides ?? [])]) byFile.set(path.resolve(file).replace(/\.ts$/, ''), `./${b.name}.js`);
  }
  return {
    name: 'lazy-bundles',
    setup(build) {
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        const target = byFile.get(path.resolve(args.resolveDir, args.path).replace(/\.(ts|js)$/, ''));
        return target ? { path: target, external: true } : undefined;
      });
    },
  };
}

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

function options(b) {
  const outfile = `dist/${b.name}.js`;
  const common = {
    entryPoints: [b.entry],
    outfile,
    bundle: true,
    minify: production,
    sourcemap: !production,
    sourcesContent: false,
    logLevel: 'warning',
  };
  if (b.platform === 'browser') return { ...common, format: 'iife', platform: 'browser', target: 'es2022', plugins: [problemReporter] };
  return {
    ...common,
    format: 'cjs',
    platform: 'node',
    target: 'node18',
    // ssh2 loads its optional native parts inside try/catch and falls back to pure JS.
    external: ['vscode', 'cpu-features', '*.node'],
    banner: b.bin ? { js: '#!/usr/bin/env node' } : undefined,
    plugins: [problemReporter, lazyBundles(b), ...(b.bin ? [executable(outfile)] : [])],
  };
}

async function main() {
  const contexts = await Promise.all(bundles.map((b) => esbuild.context(options(b))));
  if (watch) {
    await Promise.all(contexts.map((c) => c.watch()));
    return;
  }
  await Promise.all(contexts.map((c) => c.rebuild()));
  await Promise.all(contexts.map((c) => c.dispose()));
}

module.exports = { bundles };

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
