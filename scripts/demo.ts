// `npm run demo`: builds the VSIX, installs it into a real VS Code (code-server), and walks the
// participant's flow on this machine with the demo environment, as a participant would: connect,
// pre-flight, start, instructions, Score now, history. Prints what the participant saw and saves
// screenshots in .test-output/demo/. With `--open`, leaves that VS Code running for you to try.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  defaultVsixPath,
  modalDialog,
  openWorkbench,
  repoRoot,
  runCommand,
  startCodeServerWithVsix,
  statusBarEntry,
  stopAll,
  webviewFrame,
} from '../test/ui/harness';

const open = process.argv.includes('--open');
let currentPage: import('playwright-core').Page | undefined;
const outDir = path.join(repoRoot, '.test-output/demo');

function step(text: string): void {
  console.log(`\n▶ ${text}`);
}

async function shot(page: import('playwright-core').Page, name: string): Promise<void> {
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${name}.png`);
  await page.screenshot({ path: file });
  console.log(`  screenshot: ${path.relative(repoRoot, file)}`);
}

async function main(): Promise<void> {
  step('Installing the pinned test VS Code (code-server) if needed');
  execFileSync('bash', [path.join(repoRoot, 'scripts/install-test-deps.sh')], { stdio: 'inherit' });
  step('Building the extension and packaging the VSIX');
  if (!process.argv.includes('--no-build')) execFileSync('npm', ['run', '--silent', 'package'], { cwd: repoRoot, stdio: 'inherit' });
  console.log(`  ${path.relative(repoRoot, defaultVsixPath)}: ${(fs.statSync(defaultVsixPath).size / 1024).toFixed(0)} KiB`);

  // A home of its own, so the demo session starts fresh every time and touches nothing of yours.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rebench-demo-home-'));
  step(`Starting VS Code with the VSIX installed (demo home: ${home})`);
  const server = await startCodeServerWithVsix(defaultVsixPath, { theme: 'Default Dark Modern', env: { HOME: home } });
  const page = await openWorkbench(server.url);
  currentPage = page;

  step('RE-Bench: Try the Demo on This Machine');
  await runCommand(page, 'RE-Bench: Try the Demo on This Machine');
  const view = await webviewFrame(page, 'Session');
  await view.locator('.connection-word', { hasText: 'Connected' }).first().waitFor({ timeout: 60_000 });
  console.log('  connected to this machine; the runner and the demo environment are set up');

  step('RE-Bench: Start Session… (pre-flight check, then start the clock)');
  await runCommand(page, 'RE-Bench: Start Session…');
  const dialog = modalDialog(page);
  await dialog.waitFor({ timeout: 30_000 });
  console.log(
    (await dialog.innerText())
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => `  │ ${l}`)
      .join('\n'),
  );
  await shot(page, '1-preflight');
  await dialog.getByRole('button', { name: 'Start the Clock' }).click();
  const countdown = statusBarEntry(page, 'RE-Bench');
  await countdown.filter({ hasText: 'left' }).first().waitFor({ timeout: 30_000 });
  console.log(`  status bar: ${(await countdown.first().innerText()).trim()}`);
  await page.waitForTimeout(1500);
  await shot(page, '2-started-with-instructions');

  step('Score now');
  const sessionView = await webviewFrame(page, 'Session');
  await sessionView.getByRole('button', { name: 'Score now' }).click();
  const row = sessionView.locator('table.runs tbody tr').first();
  await row.waitFor({ timeout: 120_000 });
  console.log(`  history row: ${(await row.innerText()).replace(/\s+/g, ' ').trim()}`);
  await shot(page, '3-scored');

  console.log(`\nThe whole flow ran on this machine. Screenshots: ${path.relative(repoRoot, outDir)}/`);
  if (open) {
    console.log(`\nVS Code is running at ${server.url}\nOpen it in a browser to try the extension yourself; press Ctrl+C to stop.`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
  await stopAll();
  fs.rmSync(home, { recursive: true, force: true });
}

main().catch(async (e) => {
  console.error(`\nThe demo failed: ${e instanceof Error ? e.message : String(e)}`);
  if (currentPage) await shot(currentPage, 'failure').catch(() => undefined);
  await stopAll().catch(() => undefined);
  process.exit(1);
});
