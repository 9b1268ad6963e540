#!/usr/bin/env node
// Static preview of the session view outside VS Code, for looking at it and for a smoke check.
//   node scripts/preview-webview.mjs [--no-screenshots]
// Builds the real webview bundle, serves it with the real stylesheet under the same strict CSP as the
// extension, stands in for VS Code with a test-only acquireVsCodeApi and theme variables (Dark+, Light+,
// High Contrast), posts realistic snapshots, and writes screenshots to .test-output/preview/.
// It also checks what must never happen: hostile scorer text run as HTML, a dialog, a CSP violation, a
// page error, horizontal overflow in a 300 px sidebar. Exits non-zero when a check fails.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import esbuild from 'esbuild';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, '.test-output', 'preview');
const takeScreenshots = !process.argv.includes('--no-screenshots');
mkdirSync(outDir, { recursive: true });

// --- build the real bundle (same options as esbuild.js's webview context) ---------------------------
await esbuild.build({
  entryPoints: [join(root, 'src/webview/sessionView.ts')],
  outfile: join(root, 'dist/media/sessionView.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
});

// The instructions renderer, bundled for Node so this script can call it.
const markdownBundle = join(outDir, 'markdown.cjs');
await esbuild.build({
  entryPoints: [join(root, 'src/core/markdown.ts')],
  outfile: markdownBundle,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  logLevel: 'warning',
});
const { renderMarkdown } = createRequire(import.meta.url)(markdownBundle);

// --- theme variables: a subset of what VS Code sets in a webview, per theme -------------------------
const common = {
  '--vscode-font-family': "system-ui, -apple-system, 'Segoe UI', 'Ubuntu', 'Droid Sans', sans-serif",
  '--vscode-font-size': '13px',
  '--vscode-font-weight': 'normal',
  '--vscode-editor-font-family': "'Droid Sans Mono', 'monospace', monospace",
  '--vscode-editor-font-size': '12px',
};
const themes = {
  dark: {
    bodyClass: 'vscode-dark',
    background: '#181818',
    vars: {
      '--vscode-foreground': '#cccccc',
      '--vscode-descriptionForeground': '#9d9d9d',
      '--vscode-editor-background': '#1f1f1f',
      '--vscode-editor-foreground': '#cccccc',
      '--vscode-sideBar-background': '#181818',
      '--vscode-button-background': '#0078d4',
      '--vscode-button-foreground': '#ffffff',
      '--vscode-button-hoverBackground': '#026ec1',
      '--vscode-button-border': '#ffffff12',
      '--vscode-button-secondaryBackground': '#313131',
      '--vscode-button-secondaryForeground': '#cccccc',
      '--vscode-button-secondaryHoverBackground': '#3c3c3c',
      '--vscode-focusBorder': '#0078d4',
      '--vscode-textLink-foreground': '#4daafc',
      '--vscode-textLink-activeForeground': '#4daafc',
      '--vscode-widget-border': '#313131',
      '--vscode-editorWidget-border': '#454545',
      '--vscode-editorWidget-background': '#202020',
      '--vscode-textCodeBlock-background': '#2b2b2b',
      '--vscode-badge-background': '#616161',
      '--vscode-badge-foreground': '#f8f8f8',
      '--vscode-charts-foreground': '#cccccc',
      '--vscode-charts-red': '#f14c4c',
      '--vscode-charts-blue': '#3794ff',
      '--vscode-charts-yellow': '#cca700',
      '--vscode-charts-orange': '#d18616',
      '--vscode-charts-green': '#89d185',
      '--vscode-charts-purple': '#b180d7',
      '--vscode-editorWarning-foreground': '#cca700',
      '--vscode-editorError-foreground': '#f14c4c',
      '--vscode-errorForeground': '#f85149',
      '--vscode-inputValidation-errorBackground': '#5a1d1d',
      '--vscode-inputValidation-errorBorder': '#be1100',
      '--vscode-inputValidation-warningBackground': '#352a05',
      '--vscode-inputValidation-warningBorder': '#b89500',
      '--vscode-inputValidation-infoBackground': '#063b49',
      '--vscode-inputValidation-infoBorder': '#007acc',
    },
  },
  light: {
    bodyClass: 'vscode-light',
    background: '#f8f8f8',
    vars: {
      '--vscode-foreground': '#3b3b3b',
      '--vscode-descriptionForeground': '#717171',
      '--vscode-editor-background': '#ffffff',
      '--vscode-editor-foreground': '#3b3b3b',
      '--vscode-sideBar-background': '#f8f8f8',
      '--vscode-button-background': '#005fb8',
      '--vscode-button-foreground': '#ffffff',
      '--vscode-button-hoverBackground': '#0258a8',
      '--vscode-button-border': '#0000001a',
      '--vscode-button-secondaryBackground': '#e5e5e5',
      '--vscode-button-secondaryForeground': '#3b3b3b',
      '--vscode-button-secondaryHoverBackground': '#cccccc',
      '--vscode-focusBorder': '#005fb8',
      '--vscode-textLink-foreground': '#005fb8',
      '--vscode-textLink-activeForeground': '#005fb8',
      '--vscode-widget-border': '#e5e5e5',
      '--vscode-editorWidget-border': '#c8c8c8',
      '--vscode-editorWidget-background': '#ffffff',
      '--vscode-textCodeBlock-background': '#f2f2f2',
      '--vscode-badge-background': '#cccccc',
      '--vscode-badge-foreground': '#3b3b3b',
      '--vscode-charts-foreground': '#616161',
      '--vscode-charts-red': '#e51400',
      '--vscode-charts-blue': '#1a85ff',
      '--vscode-charts-yellow': '#bf8803',
      '--vscode-charts-orange': '#d18616',
      '--vscode-charts-green': '#388a34',
      '--vscode-charts-purple': '#652d90',
      '--vscode-editorWarning-foreground': '#bf8803',
      '--vscode-editorError-foreground': '#e51400',
      '--vscode-errorForeground': '#a1260d',
      '--vscode-inputValidation-errorBackground': '#f2dede',
      '--vscode-inputValidation-errorBorder': '#be1100',
      '--vscode-inputValidation-warningBackground': '#f6f5d2',
      '--vscode-inputValidation-warningBorder': '#b89500',
      '--vscode-inputValidation-infoBackground': '#d6ecf2',
      '--vscode-inputValidation-infoBorder': '#007acc',
    },
  },
  'high-contrast': {
    bodyClass: 'vscode-high-contrast',
    background: '#000000',
    vars: {
      '--vscode-foreground': '#ffffff',
      '--vscode-descriptionForeground': '#ffffffb3',
      '--vscode-editor-background': '#000000',
      '--vscode-editor-foreground': '#ffffff',
      '--vscode-sideBar-background': '#000000',
      '--vscode-contrastBorder': '#6fc3df',
      '--vscode-contrastActiveBorder': '#f38518',
      '--vscode-button-background': '#000000',
      '--vscode-button-foreground': '#ffffff',
      '--vscode-button-border': '#6fc3df',
      '--vscode-button-secondaryBackground': '#000000',
      '--vscode-button-secondaryForeground': '#ffffff',
      '--vscode-focusBorder': '#f38518',
      '--vscode-textLink-foreground': '#21a6ff',
      '--vscode-textLink-activeForeground': '#21a6ff',
      '--vscode-widget-border': '#6fc3df',
      '--vscode-editorWidget-border': '#6fc3df',
      '--vscode-editorWidget-background': '#0c141f',
      '--vscode-textCodeBlock-background': '#000000',
      '--vscode-badge-background': '#000000',
      '--vscode-badge-foreground': '#ffffff',
      '--vscode-charts-foreground': '#ffffff',
      '--vscode-charts-red': '#f48771',
      '--vscode-charts-blue': '#75beff',
      '--vscode-charts-yellow': '#ffcc00',
      '--vscode-charts-orange': '#ff9f00',
      '--vscode-charts-green': '#89d185',
      '--vscode-charts-purple': '#b180d7',
      '--vscode-editorWarning-foreground': '#ff9f00',
      '--vscode-editorError-foreground': '#f48771',
      '--vscode-errorForeground': '#f48771',
      '--vscode-inputValidation-errorBackground': '#000000',
      '--vscode-inputValidation-errorBorder': '#f38518',
      '--vscode-inputValidation-warningBackground': '#000000',
      '--vscode-inputValidation-warningBorder': '#6fc3df',
      '--vscode-inputValidation-infoBackground': '#000000',
      '--vscode-inputValidation-infoBorder': '#6fc3df',
    },
  },
};

for (const [name, theme] of Object.entries(themes)) {
  const vars = Object.entries({ ...common, ...theme.vars })
    .map(([k, v]) => `  ${k}: ${v};`)
    .join('\n');
  // VS Code's own default webview styles set the body colour and font; the view's stylesheet sets the rest.
  writeFileSync(join(outDir, `theme-${name}.css`), `html {\n${vars}\n  background: ${theme.background};\n}\n`);
}

// --- the page ------------------------------------------------------------------------------------
function pageHtml(layout, theme, origin) {
  const nonce = randomBytes(16).toString('base64');
  const csp = `default-src 'none'; img-src ${origin} data:; style-src ${origin}; script-src 'nonce-${nonce}'; font-src ${origin};`;
  // Test-only stand-in for VS Code's webview API: records what the view posts and keeps its state.
  const fakeApi = `
    window.__posted = []; window.__state = undefined; window.__csp = []; window.__errors = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
    window.addEventListener('error', (e) => window.__errors.push(String(e.message)));
    window.acquireVsCodeApi = () => ({
      postMessage: (m) => window.__posted.push(JSON.parse(JSON.stringify(m))),
      getState: () => window.__state,
      setState: (s) => { window.__state = JSON.parse(JSON.stringify(s)); },
    });`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="/.test-output/preview/theme-${theme}.css">
<link rel="stylesheet" href="/media/sessionView.css">
<title>Session view preview</title>
</head>
<body class="${themes[theme].bodyClass}" data-layout="${layout}">
<script nonce="${nonce}">${fakeApi}</script>
<script nonce="${nonce}" src="/dist/media/sessionView.js"></script>
</body>
</html>`;
}

// The instructions panel: rendered Markdown in a page with no script at all.
const demoInstructions = join(root, 'environments/demo-fast-function/instructions.md');
const instructionsMarkdown = `${existsSync(demoInstructions) ? readFileSync(demoInstructions, 'utf8') : '# Instructions\n\nInline $x^2$ and display:\n\n$$\\int_0^1 f(x)\\,dx$$\n'}

## Text that must stay text

<script>alert(1)</script> <img src=x onerror=alert(2)> [click me](javascript:alert(3)) costs $5 and $10.

| Setting | Value |
|:--|--:|
| time limit | 8 h |
| scoring timeout | 600 s |
`;
function instructionsHtml(theme, origin) {
  const csp = `default-src 'none'; img-src ${origin} data:; style-src ${origin}; script-src 'none'; font-src ${origin};`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<link rel="stylesheet" href="/.test-output/preview/theme-${theme}.css">
<link rel="stylesheet" href="/media/instructions.css">
<title>Instructions preview</title>
</head>
<body class="${themes[theme].bodyClass}">
<main class="instructions">
${renderMarkdown(instructionsMarkdown)}</main>
</body>
</html>`;
}

const types = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html', '.png': 'image/png', '.svg': 'image/svg+xml' };
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/favicon.ico') {
    res.writeHead(204);
    res.end();
    return;
  }
  if (url.pathname === '/instructions') {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(instructionsHtml(url.searchParams.get('theme') ?? 'dark', `http://${req.headers.host}`));
    return;
  }
  if (url.pathname === '/page') {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(pageHtml(url.searchParams.get('layout') ?? 'view', url.searchParams.get('theme') ?? 'dark', `http://${req.headers.host}`));
    return;
  }
  const path = normalize(join(root, decodeURIComponent(url.pathname)));
  const allowed = ['dist/media', 'media', '.test-output/preview'].some((d) => path.startsWith(join(root, d) + '/'));
  try {
    if (!allowed) throw new Error('not served');
    const body = readFileSync(path);
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

// --- snapshots -----------------------------------------------------------------------------------
const NOW = Date.parse('2026-03-14T14:30:00Z');
const LIMIT = 8 * 3600;
const LEFT = 2 * 3600 + 13 * 60 + 5;
const START = NOW - (LIMIT - LEFT) * 1000;
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const sha = (s) => createHash('sha256').update(String(s)).digest('hex');

function entry(index, elapsedMin, score, message, extra = {}) {
  const elapsed = Math.round(elapsedMin * 60);
  const duration = extra.duration_s ?? 40 + index * 3;
  return {
    index,
    job_id: `j-${String(index + 1).padStart(3, '0')}-${sha(index).slice(0, 6)}`,
    kind: 'score',
    started_at: iso(START + elapsed * 1000),
    ended_at: iso(START + (elapsed + duration) * 1000),
    elapsed_s: elapsed,
    score,
    message,
    exit_code: score === null ? 1 : 0,
    signal: null,
    timed_out: false,
    killed: false,
    duration_s: duration,
    solution_hash: `sha256:${sha(`solution${index}`)}`,
    counts: true,
    output_bytes: 2048,
    output_truncated: false,
    prev_hash: index === 0 ? '0'.repeat(64) : sha(index - 1),
    hash: sha(index),
    ...extra,
  };
}

const runEntries = [
  entry(0, 6, 5.612, 'Starting solution: 275.4 s per epoch'),
  entry(1, 38, 5.488, 'Mean time 241.8 s'),
  entry(2, 71, null, 'Training crashed: CUDA out of memory (tried to allocate 2.50 GiB). See the job output for the traceback.'),
  entry(3, 95, 5.309, 'Mean time 202.1 s'),
  entry(4, 124, 5.351, 'Mean time 210.8 s'),
  entry(5, 160, 5.021, 'Mean time 151.6 s'),
  entry(6, 198, 4.913, 'Mean time 136.0 s'),
  entry(7, 231, null, 'Scoring timed out after 600 s', { timed_out: true, killed: true, signal: 'SIGKILL', exit_code: null, duration_s: 600 }),
  entry(8, 262, 4.874, 'Mean time 130.9 s'),
  entry(9, 290, 4.952, 'Mean time 141.5 s; loss 2.91 above the threshold of 2.8 would have failed: it passed'),
  entry(10, 318, 4.624, 'Mean time 101.9 s'),
  entry(11, 341, 4.581, 'Mean time 97.6 s'),
];

const environment = {
  id: 'finetune-speed',
  title: 'Speed up a finetuning script',
  version: '1.2.0',
  direction: 'lower',
  aggregation: 'best',
  startingScore: 5.6,
  referenceScore: 4.54,
  pausesAllowed: true,
};

const session = {
  state: 'running',
  deadlineLocalMs: NOW + LEFT * 1000,
  secondsLeft: LEFT,
  deadlineIso: iso(NOW + LEFT * 1000),
  startedIso: iso(START),
  timeLimitS: LIMIT,
  clockOffsetMs: 0,
  mode: 'protected',
  solutionDir: '/home/participant/solution',
};

const jobOutput = [
  'Scoring solution in /home/participant/solution (sha256:4c1e…)',
  '[rank0] loading model llama-3-8b from /data/model …',
  '[rank0] tokenizer ready: 32000 tokens',
  'step    1/60  loss 2.9873  time 2.41 s',
  'step   10/60  loss 2.7740  time 1.62 s',
  'step   20/60  loss 2.6025  time 1.61 s',
  'step   30/60  loss 2.5511  time 1.60 s',
  '',
].join('\n');

const running = {
  connection: { kind: 'connected', target: 'participant@gpu-vm-17.example.org:22', detail: 'Connected to participant@gpu-vm-17.example.org:22' },
  environment,
  session,
  job: { jobId: 'j-013-7f3a9c', startedIso: iso(NOW - 12_000), output: jobOutput },
  entries: runEntries,
  countedIndex: 11,
  logIntact: true,
  logProblem: null,
  scoreDisabledReason: 'A scoring job is running.',
  notice: null,
};

const notStarted = {
  ...running,
  connection: { kind: 'connected', target: 'this machine', detail: 'Connected to this machine' },
  environment: { ...environment, id: 'demo', title: 'Demo: fit a small regression model', version: '1.0.0', direction: 'higher', startingScore: 0.2, referenceScore: 0.9, pausesAllowed: false },
  session: { ...session, state: 'not_started', deadlineLocalMs: null, secondsLeft: null, deadlineIso: null, startedIso: null, mode: 'unprotected' },
  job: null,
  entries: [],
  countedIndex: null,
  scoreDisabledReason: 'Start the session first.',
};

const logBroken = {
  ...running,
  connection: {
    kind: 'reconnecting',
    target: 'participant@gpu-vm-17.example.org:22',
    detail: 'Connection lost (read ECONNRESET). Reconnecting in 4 s (attempt 3)…',
  },
  session: { ...session, deadlineLocalMs: NOW + 240 * 1000, secondsLeft: 240, deadlineIso: iso(NOW + 240 * 1000) },
  job: null,
  logIntact: false,
  logProblem: 'entry 7 does not chain to entry 6 (its prev_hash differs)',
  scoreDisabledReason: 'Disconnected: reconnecting to the VM…',
  notice: { level: 'warning', text: 'The last status request failed; the view shows what was known 20 s ago.' },
};

const disconnected = {
  connection: { kind: 'disconnected', target: null, detail: 'Not connected. Connect to your VM, or try the demo on this machine.' },
  environment: null,
  session: null,
  job: null,
  entries: [],
  countedIndex: null,
  logIntact: true,
  logProblem: null,
  scoreDisabledReason: 'Not connected to the VM.',
  notice: null,
};

const paused = {
  ...running,
  session: { ...session, state: 'paused', deadlineLocalMs: null, secondsLeft: 3 * 3600 + 12 * 60 + 40, deadlineIso: null },
  job: null,
  scoreDisabledReason: 'The session is paused: resume it to score.',
};

const ended = {
  ...running,
  session: { ...session, state: 'ended', secondsLeft: 0, deadlineLocalMs: NOW - 60_000, deadlineIso: iso(NOW - 60_000) },
  job: null,
  entries: [...runEntries, entry(12, 481, 4.49, 'Mean time 89.0 s (started after the deadline)', { counts: false })],
  scoreDisabledReason: 'The session has ended: scoring is closed.',
};

const hostileText = '<img src=x onerror=alert(1)>';
const hostileScript = '<script>alert(2)</script>';
const hostileTitle = '<a href="javascript:alert(3)">click me</a> javascript:alert(4)';
const hostile = {
  ...running,
  environment: { ...environment, title: hostileTitle, direction: 'higher', aggregation: 'last', startingScore: 0, referenceScore: 1 },
  job: { jobId: 'j-evil', startedIso: iso(NOW - 5000), output: `${hostileScript}\n${hostileText}\n` },
  entries: [
    entry(0, 10, 0.4, hostileText),
    entry(1, 20, null, hostileScript),
    entry(2, 30, 0.7, `javascript:alert(5) ${'long message '.repeat(30)}`),
  ],
  countedIndex: 2,
  scoreDisabledReason: null,
  notice: { level: 'error', text: hostileScript },
  logIntact: false,
  logProblem: hostileText,
};

// --- run -----------------------------------------------------------------------------------------
const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function openPage(layout, theme, width) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, timezoneId: 'Europe/Berlin', locale: 'en-GB', reducedMotion: 'reduce' });
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.clock.setFixedTime(NOW);
  await page.goto(`${origin}/page?layout=${layout}&theme=${encodeURIComponent(theme)}`);
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'ready'));
  return { page, context, dialogs, consoleErrors };
}

async function post(page, message) {
  await page.evaluate((m) => window.postMessage(m, '*'), message);
}

async function showSnapshot(page, snapshot) {
  await post(page, { type: 'snapshot', snapshot });
  await page.waitForFunction(() => !document.querySelector('main.app')?.hidden);
  await page.waitForTimeout(150);
}

async function pageProblems(p, what) {
  const csp = await p.page.evaluate(() => window.__csp);
  const errors = await p.page.evaluate(() => window.__errors);
  check(csp.length === 0, `${what}: no CSP violation${csp.length ? ` (${csp.join(', ')})` : ''}`);
  check(errors.length === 0 && p.consoleErrors.length === 0, `${what}: no page errors${errors.length || p.consoleErrors.length ? ` (${[...errors, ...p.consoleErrors].join(' | ')})` : ''}`);
  check(p.dialogs.length === 0, `${what}: no dialog opened`);
}

const scenarios = { running, 'not-started': notStarted, 'log-broken': logBroken, paused, ended, disconnected };
const layouts = { view: 320, history: 1000 };

for (const theme of Object.keys(themes)) {
  for (const [layout, width] of Object.entries(layouts)) {
    for (const [name, snapshot] of Object.entries(scenarios)) {
      if (layout === 'history' && (name === 'not-started' || name === 'disconnected')) continue;
      const p = await openPage(layout, theme, width);
      await showSnapshot(p.page, snapshot);
      const what = `${layout} ${theme} ${name}`;
      if (layout === 'view') {
        const overflow = await p.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        check(overflow <= 0, `${what}: no horizontal overflow at ${width}px (${overflow}px)`);
      }
      await pageProblems(p, what);
      if (takeScreenshots) await p.page.screenshot({ path: join(outDir, `${layout}-${theme}-${name}.png`), fullPage: true });
      await p.context.close();
    }
  }
}

// Narrow sidebar: the view must still fit at 300 px in every scenario.
{
  const p = await openPage('view', 'dark', 300);
  for (const [name, snapshot] of Object.entries({ ...scenarios, hostile })) {
    await showSnapshot(p.page, snapshot);
    const overflow = await p.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(overflow <= 0, `view 300px ${name}: no horizontal overflow (${overflow}px)`);
  }
  await p.context.close();
}

// Behaviour: the countdown, the ready handshake, requests and replies, output deltas, announcements.
{
  const p = await openPage('view', 'dark', 320);
  const { page } = p;
  await showSnapshot(page, { ...running, job: null, scoreDisabledReason: null });
  check((await page.textContent('[role=timer]')) === '2:13:05', 'timer shows 2:13:05 from the deadline');
  check((await page.getAttribute('[role=timer]', 'aria-live')) === 'off', 'timer is not a live region');
  await page.clock.setFixedTime(NOW + 65_000);
  await page.waitForTimeout(1200);
  check((await page.textContent('[role=timer]')) === '2:12:00', 'timer counts down on its own (2:12:00 after 65 s)');

  await page.click('button[data-focus-key="action:score"]');
  const req = await page.evaluate(() => window.__posted.filter((m) => m.type === 'request').pop());
  check(req?.action === 'score' && Number.isInteger(req.id), 'Score now posts a request with an id');
  check((await page.textContent('button[data-focus-key="action:score"]')) === 'Starting…', 'Score now reads "Starting…" while in flight');
  check((await page.getAttribute('button[data-focus-key="action:score"]', 'aria-disabled')) === 'true', 'Score now is disabled while in flight');
  // A real click on the aria-disabled button (Playwright's click refuses it as "not enabled").
  await page.$eval('button[data-focus-key="action:score"]', (b) => b.click());
  const count = await page.evaluate(() => window.__posted.filter((m) => m.type === 'request').length);
  check(count === 1, 'a second click while in flight posts nothing');
  // The host may answer only when the job has finished: once the job shows, its reason takes over.
  await showSnapshot(page, running);
  check((await page.textContent('button[data-focus-key="action:score"]')) === 'Score now', 'with the job running, the button says Score now again');
  check((await page.textContent('.score-reason')) === 'A scoring job is running.', 'with the job running, the reason is shown');
  await showSnapshot(page, { ...running, job: null, scoreDisabledReason: null });
  check((await page.textContent('button[data-focus-key="action:score"]')) === 'Score now', 'after the job, no second "Starting…" while the reply is on its way');
  await post(page, { type: 'reply', id: req.id, ok: false, error: `The runner refused: ${hostileText}` });
  await page.waitForTimeout(100);
  const alertText = await page.evaluate(() => [...document.querySelectorAll('.score-now [role=alert]')].map((e) => e.textContent).join(''));
  check(alertText.includes(hostileText), 'a reply error is shown next to Score now, as text');
  check((await page.textContent('button[data-focus-key="action:score"]')) === 'Score now', 'Score now is back after the reply');
  if (takeScreenshots) await page.screenshot({ path: join(outDir, 'view-dark-reply-error.png'), fullPage: true });

  await showSnapshot(page, running);
  await post(page, { type: 'jobOutput', jobId: running.job.jobId, text: 'step   40/60  loss 2.5102  time 1.60 s\n' });
  await post(page, { type: 'jobOutput', jobId: 'some-other-job', text: 'NOT MINE\n' });
  await page.waitForTimeout(200);
  const out = await page.textContent('pre.job-output');
  check(out.endsWith('step   40/60  loss 2.5102  time 1.60 s\n'), 'a jobOutput delta is appended');
  check(!out.includes('NOT MINE'), 'a delta for another job is ignored');
  // The view caches its state at most once a second (a long history is megabytes to serialise).
  await page.waitForTimeout(1100);
  const cachedLater = await page.evaluate(() => window.__state?.snapshot?.job?.output ?? '');
  check(cachedLater.endsWith('time 1.60 s\n') && cachedLater.includes('step   40/60'), 'the cached state keeps the appended output');

  // A flood of output stays capped.
  await page.evaluate((jobId) => {
    const chunk = 'x'.repeat(1024 * 1024) + '\n';
    for (let i = 0; i < 20; i++) window.postMessage({ type: 'jobOutput', jobId, text: chunk }, '*');
  }, running.job.jobId);
  await page.waitForTimeout(400);
  const len = await page.evaluate(() => document.querySelector('pre.job-output').textContent.length);
  check(len <= 64 * 1024, `20 MB of output leaves at most 64 KiB in the view (${len})`);

  const newEntry = entry(12, 352, 4.512, 'Mean time 91.1 s');
  await showSnapshot(page, { ...running, job: null, entries: [...runEntries, newEntry], countedIndex: 12, scoreDisabledReason: null });
  await page.waitForTimeout(200);
  const said = await page.textContent('[aria-live=polite]');
  check(/^New score 4\.512 \(normalised 1\.0\d*\)\. Best so far\.$/.test(said ?? ''), `a new score is announced once ("${said}")`);
  const noScore = entry(13, 360, null, 'Scoring failed: ValueError: loss is NaN');
  await showSnapshot(page, { ...running, job: null, entries: [...runEntries, newEntry, noScore], countedIndex: 12, scoreDisabledReason: null });
  await page.waitForTimeout(200);
  check((await page.textContent('[aria-live=polite]')) === 'Scoring finished with no score: Scoring failed: ValueError: loss is NaN', 'a no-score run is announced with its message');

  // Malformed host messages are ignored.
  await post(page, { type: 'snapshot', snapshot: { ...running, entries: 'nope' } });
  await post(page, { type: 'reply', id: 'x', ok: true });
  await post(page, { type: 'delete-everything' });
  await page.waitForTimeout(150);
  const rowsAfter = (await page.$$('table.runs tbody tr.run')).length;
  check(rowsAfter === 10, `malformed messages change nothing (${rowsAfter} rows)`);

  // A re-opened view paints its cached snapshot before the host says anything.
  const state = await page.evaluate(() => window.__state);
  const again = await browser.newContext({ viewport: { width: 320, height: 900 } });
  const page2 = await again.newPage();
  await page2.addInitScript((s) => {
    window.__preState = s;
  }, state);
  await page2.route('**/page*', async (route) => {
    const res = await route.fetch();
    const body = (await res.text()).replace('getState: () => window.__state', 'getState: () => window.__preState');
    await route.fulfill({ response: res, body });
  });
  await page2.goto(`${origin}/page?layout=view&theme=dark`);
  await page2.waitForTimeout(200);
  const rowsCached = (await page2.$$('table.runs tbody tr.run')).length;
  check(rowsCached === 10, `a re-opened view paints the cached snapshot at once (${rowsCached} rows; ${JSON.stringify(await page2.evaluate(() => [typeof window.__preState, window.__errors]))})`);
  await again.close();
  await pageProblems(p, 'behaviour page');
  await p.context.close();
}

// Hostile text must show as text, never run, in both layouts.
for (const [layout, width] of Object.entries(layouts)) {
  const p = await openPage(layout, 'dark', width);
  await showSnapshot(p.page, hostile);
  const body = await p.page.evaluate(() => document.body.innerText);
  check(body.includes(hostileText), `${layout}: "<img onerror>" message shows literally`);
  check(body.includes(hostileScript), `${layout}: "<script>" text shows literally`);
  check(body.includes(hostileTitle), `${layout}: title with a javascript: link shows literally`);
  const injected = await p.page.evaluate(() => ({
    imgs: document.querySelectorAll('img').length,
    scripts: [...document.scripts].filter((s) => !s.nonce).length,
    links: document.querySelectorAll('a').length,
  }));
  check(injected.imgs === 0 && injected.scripts === 0 && injected.links === 0, `${layout}: no element was created from hostile text`);
  await p.page.waitForTimeout(300);
  await pageProblems(p, `${layout} hostile`);
  if (takeScreenshots) await p.page.screenshot({ path: join(outDir, `${layout}-dark-hostile.png`), fullPage: true });
  await p.context.close();
}

// The instructions panel in each theme: math as MathML, hostile Markdown as text, nothing blocked.
for (const theme of Object.keys(themes)) {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(`${origin}/instructions?theme=${encodeURIComponent(theme)}`);
  const facts = await page.evaluate(() => ({
    maths: document.querySelectorAll('math').length,
    scripts: document.scripts.length,
    imgs: document.querySelectorAll('img').length,
    jsLinks: [...document.querySelectorAll('a')].filter((a) => !/^(https?|mailto):/.test(a.href)).length,
    text: document.body.innerText,
  }));
  check(facts.maths > 0, `instructions ${theme}: math rendered as MathML (${facts.maths})`);
  check(facts.scripts === 0 && facts.imgs === 0 && facts.jsLinks === 0, `instructions ${theme}: no script, image or unsafe link from the Markdown`);
  check(facts.text.includes('<script>alert(1)</script>') && facts.text.includes('costs $5 and $10'), `instructions ${theme}: raw HTML and prices show as text`);
  check(problems.length === 0, `instructions ${theme}: no console errors or dialogs${problems.length ? ` (${problems.join(' | ')})` : ''}`);
  if (takeScreenshots) await page.screenshot({ path: join(outDir, `instructions-${theme}.png`), fullPage: true });
  await context.close();
}

await browser.close();
server.close();
console.log(`${takeScreenshots ? `screenshots in ${outDir}\n` : ''}${failures.length === 0 ? 'all preview checks passed' : `${failures.length} preview checks failed`}`);
process.exit(failures.length === 0 ? 0 : 1);
