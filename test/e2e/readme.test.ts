import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, hasServer } from '../helpers/db.js';

// Issue 11: follow the README as a newcomer does, in a fresh clone, and fail when an example does not run as
// written. The clone is of HEAD (uncommitted edits are not in it, as in CI's clean clone); it shares this
// project's node_modules through a symlink and builds with tsc, so the test needs no network. Measured: clone +
// build ≈ 5 s against 3 s for `npm run build` alone, so a copy of dist would save little and test less.
// `npm start` itself (build, then a 1 M-row demo: minutes, 2.3 GB) is too slow for the suite; its script is read.

/** A command line of the README: its line number and the command without its comment. */
interface Example { line: number; text: string }

/**
 * The code-fence reader (no Markdown parser is a dependency): fenced blocks opened by ```sh, ```shell or
 * ```console (other fences, ```text included, are output, not commands), one command per line.
 */
function readmeCommands(markdown: string): Example[] {
  const out: Example[] = [];
  let inShell = false;
  let inOther = false;
  markdown.split('\n').forEach((raw, i) => {
    const fence = /^\s*```\s*(\S*)/.exec(raw);
    if (fence) {
      if (inShell || inOther) { inShell = inOther = false; return; }
      if (['sh', 'shell', 'console'].includes(fence[1]!)) inShell = true; else inOther = true;
      return;
    }
    if (!inShell) return;
    const text = stripComment(raw.replace(/^\$ /, '')).trim();
    if (text) out.push({ line: i + 1, text });
  });
  return out;
}

/** Drops a trailing `# comment` (a `#` after whitespace, outside quotes). */
function stripComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) { if (c === quote) quote = ''; continue; }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

const isCliExample = (text: string): boolean => /^(npx )?sync-lookup /.test(text);

/**
 * Examples not run, keyed by their exact text (comment stripped). A new README example is run unless it is
 * added here with its reason.
 */
const SKIPPED: Record<string, string> = {
  // "On an existing Tamanu central server": needs a Tamanu central server's schema and a URL the reader fills in.
  'sync-lookup migrate --dry-run --adopt': 'needs an existing Tamanu central server',
  'sync-lookup migrate --adopt': 'needs an existing Tamanu central server (also in the migrate block: adoption of a deployed schema)',
  'sync-lookup status': 'needs an existing Tamanu central server (`status --json` runs)',
  'sync-lookup models init --from-db > models.json': 'needs an existing Tamanu central server',
  'sync-lookup verify --models models.json': 'needs an existing Tamanu central server and its drafted models.json',
  'sync-lookup purge encounter_medications --models models.json': 'needs an existing Tamanu central server and its drafted models.json',
  'sync-lookup purge notes --then-rebuild --models models.json': 'needs an existing Tamanu central server and its drafted models.json',
  // The embedded server: the suite's databases are on a shared test server (DATABASE_URL); cli-db.test.ts covers these.
  'sync-lookup db start': 'the embedded server (covered by cli-db.test.ts)',
  'sync-lookup db stop': 'the embedded server (covered by cli-db.test.ts)',
  'sync-lookup db destroy': 'the embedded server (covered by cli-db.test.ts)',
  // A placeholder: job 12 is whatever interrupted job the reader has.
  'sync-lookup jobs --resume 12': 'job 12 is a placeholder for an interrupted job',
  // Minutes and gigabytes: too slow for the suite.
  'sync-lookup bench --rows 500k,1m,2m --json --out bench-out': 'the benchmark takes about 11 minutes',
};

/** Examples run with a change, keyed by their exact text: what runs instead, and why. */
const ADJUSTED: Record<string, { run: string; why: string }> = {
  // Every flag as written; 1 M rows take 20–40 s here, so the size is small.
  'sync-lookup seed --rows 1m --seed 7': { run: 'sync-lookup seed --rows 2k --seed 7 --replace', why: 'a 2 000-row seed, replacing the setup one' },
};

/** Examples that run until Ctrl-C: interrupted after their first output, they must exit 130. */
const INTERRUPTED = new Set(['sync-lookup build --watch 5']);

/** Examples that run on a database of their own, as their comment says ("new database"). */
const OWN_DATABASE = new Set(['sync-lookup migrate --layout partitioned']);

/**
 * Check commands (verify, explain, doctor, lint) allowed to exit 3 (a check found problems) on the small seeded
 * database. The lint example shows the seed's migrations failing on purpose.
 */
const MAY_FIND_PROBLEMS = new Set<string>([
  'sync-lookup lint test/fixtures/lint/seed-tamanu --schema test/fixtures/origin/schema.sql --assume-rows sync_lookup=58000000',
]);

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs one README line with `sh` in `cwd`, `sync-lookup` on PATH; with `interrupt`, SIGINT after its first output. */
function runLine(line: string, cwd: string, env: NodeJS.ProcessEnv, interrupt = false): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', interrupt ? `exec ${line}` : line], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    const onOutput = (): void => { if (interrupt && !child.killed) child.kill('SIGINT'); };
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); onOutput(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); onOutput(); });
    child.on('error', reject);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

describe.runIf(hasServer())('the README, followed in a fresh clone', () => {
  let root = '';
  let clone = '';
  let env: NodeJS.ProcessEnv = {};
  let readme = '';

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sl-readme-'));
    clone = path.join(root, 'sync-lookup');
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    execFileSync('git', ['clone', '-q', '--no-checkout', '.', clone]);
    execFileSync('git', ['-C', clone, 'checkout', '-q', head]);
    await symlink(path.resolve('node_modules'), path.join(clone, 'node_modules'));
    execFileSync(process.execPath, [path.resolve('node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: clone });
    // `sync-lookup` on PATH, as `npm link` would put it.
    const bin = path.join(root, 'bin');
    await mkdir(bin);
    const shim = path.join(bin, 'sync-lookup');
    await writeFile(shim, `#!/bin/sh\nexec "${process.execPath}" "${path.join(clone, 'dist/cli/main.js')}" "$@"\n`);
    await chmod(shim, 0o755);
    const { DATABASE_URL: _unset, ...base } = process.env;
    env = { ...base, PATH: `${bin}:${base.PATH ?? ''}`, npm_config_offline: 'true' };
    readme = await readFile(path.join(clone, 'README.md'), 'utf8');
  });

  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('starts with its two commands, which package.json and .ci/run keep', async () => {
    const lines = readme.split('\n');
    expect(lines.slice(0, 3)).toEqual(['# sync-lookup', '', '```sh']);
    const close = lines.indexOf('```', 3);
    expect(lines.slice(3, close).map((l) => stripComment(l).trim())).toEqual(['npm ci && npm start', 'npm test']);
    const pkg = JSON.parse(await readFile(path.join(clone, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    // README: `npm start` = build, then sync-lookup demo; `npm test` builds, then vitest.
    expect(pkg.scripts.start).toMatch(/npm run -s build && node dist\/cli\/main\.js demo/);
    expect(pkg.scripts.test).toMatch(/npm run -s build && vitest run/);
    const ci = (await readFile(path.join(clone, '.ci/run'), 'utf8')).split('\n').map((l) => l.trim());
    expect(ci.indexOf('npm ci')).toBeGreaterThan(-1);
    expect(ci.indexOf('npm test')).toBeGreaterThan(ci.indexOf('npm ci'));
  });

  it('runs every sync-lookup example as written (after the newcomer\'s migrate and a small seed)', async () => {
    const examples = readmeCommands(readme).filter((e) => isCliExample(e.text));
    const texts = new Set(examples.map((e) => e.text));
    const stale = [...Object.keys(SKIPPED), ...Object.keys(ADJUSTED), ...INTERRUPTED, ...OWN_DATABASE, ...MAY_FIND_PROBLEMS]
      .filter((t) => !texts.has(t));
    expect(stale, 'entries for examples no longer in the README').toEqual([]);

    const main = await createTestDatabase();
    const mainEnv = { ...env, DATABASE_URL: main.url };
    // The setup a newcomer does, through npx as the README says.
    for (const setup of ['npx sync-lookup migrate', 'npx sync-lookup seed --rows 2k']) {
      const r = await runLine(setup, clone, mainEnv);
      expect(r.code, `${setup}\n${r.stderr}`).toBe(0);
    }

    const run = examples.filter((e) => SKIPPED[e.text] === undefined);
    expect(run.length, 'examples found in the README beside the skipped ones').toBeGreaterThan(0);
    const failures: string[] = [];
    for (const example of run) {
      const line = ADJUSTED[example.text]?.run ?? example.text;
      const own = OWN_DATABASE.has(example.text) ? await createTestDatabase() : undefined;
      const interrupt = INTERRUPTED.has(example.text);
      const r = await runLine(line, clone, own ? { ...env, DATABASE_URL: own.url } : mainEnv, interrupt);
      const ok = interrupt ? r.code === 130 : r.code === 0 || (r.code === 3 && MAY_FIND_PROBLEMS.has(example.text));
      if (!ok) failures.push(`README line ${example.line}: ${line} → exit ${r.code ?? r.signal}\n${r.stderr.trim().split('\n').slice(-5).join('\n')}`);
    }
    expect(failures).toEqual([]);
  }, 600_000);
});
