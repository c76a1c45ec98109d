// The dashboard in real headless Chromium against a real scalepilot daemon
// (scripts/browser-test.sh starts both and passes their addresses and tokens here).
//
// An operator signs in, sees the group, opens its page (chart drawn, the engine's decision
// reasons in the timeline), scales it by hand and sees that activity appear with its reason;
// a screenshot of that page is saved; pause and enable/disable change the group's state. A viewer sees no action buttons and is refused a direct
// POST. An admin sees the scale in the audit log. Any failure exits non-zero.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`dashboard.test: ${name} is not set (run scripts/browser-test.sh)`);
    process.exit(2);
  }
  return v;
}

const BASE = env('SP_URL').replace(/\/$/, '');
const GROUP = env('SP_GROUP');
const TOKENS = { admin: env('SP_ADMIN_TOKEN'), operator: env('SP_OPERATOR_TOKEN'), viewer: env('SP_VIEWER_TOKEN') };
const NAMES = { admin: env('SP_ADMIN_NAME'), operator: env('SP_OPERATOR_NAME'), viewer: env('SP_VIEWER_NAME') };
const SCREENSHOT = process.env.SP_SCREENSHOT || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// How long to wait for something the daemon does (an evaluation, an activity): a bound on
// waiting, never a timing that is asserted.
const WAIT = 30_000;

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let step = 'start';
const say = (s) => {
  step = s;
  console.log(`- ${s}`);
};

if (!existsSync(CHROMIUM)) {
  console.error(`dashboard.test: Chromium is missing at ${CHROMIUM} (scripts/browser-test.sh installs Debian's chromium)`);
  process.exit(1);
}

const profile = mkdtempSync(join(tmpdir(), 'scalepilot-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 },
    timeout: 60_000,
  });
} catch (e) {
  rmSync(profile, { recursive: true, force: true });
  console.error(`dashboard.test: Chromium (${CHROMIUM}) failed to start: ${e.message}`);
  process.exit(1);
}

// Everything the pages load must come from the daemon (no CDN: the dashboard works offline),
// and no page may throw.
const problems = [];
context.on('request', (r) => {
  const u = r.url();
  if (!u.startsWith(`${BASE}/`) && !u.startsWith('data:')) problems.push(`request outside the daemon: ${u}`);
});
context.on('page', (p) => p.on('pageerror', (e) => problems.push(`page error: ${e.message}`)));

/** A new tab (its own session storage) signed in with a role's token. */
async function signIn(role) {
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${BASE}/`);
  await page.getByLabel('API token').fill(TOKENS[role]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('whoami').filter({ hasText: `${NAMES[role]} (${role})` }).waitFor({ timeout: WAIT });
  return page;
}

async function openGroup(page) {
  await page.goto(`${BASE}/#/groups/${encodeURIComponent(GROUP)}`);
  await page.getByTestId('group-name').filter({ hasText: GROUP }).waitFor();
  // The first refresh has filled the state in.
  await page.getByTestId('group-replicas').waitFor({ timeout: WAIT });
}

async function apiCall(method, path, tok, body) {
  const res = await fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, json, text };
}

const reason = `browser test: manual scale ${process.pid}`;
try {
  // --- operator -------------------------------------------------------------------------
  say('a wrong token is refused at the login form');
  {
    const page = await context.newPage();
    await page.goto(`${BASE}/`);
    await page.getByLabel('API token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('login-error').filter({ hasText: 'refused' }).waitFor({ timeout: WAIT });
    assert.equal(await page.getByTestId('whoami').isVisible(), false, 'signed in with a wrong token');
    await page.close();
  }

  say('the operator signs in; the token is kept in session storage across a reload');
  const op = await signIn('operator');
  const kept = await op.evaluate(() => sessionStorage.getItem('scalepilot.token'));
  assert.equal(kept, TOKENS.operator, 'the token is not in session storage');
  await op.reload();
  await op.getByTestId('whoami').filter({ hasText: NAMES.operator }).waitFor({ timeout: WAIT });
  assert.equal(await op.getByTestId('nav-audit').isVisible(), false, 'an operator sees the Audit link');

  say('the groups table lists the group with its state and replicas');
  const row = op.locator(`[data-testid="group-row"][data-group="${GROUP}"]`);
  await row.waitFor({ timeout: WAIT });
  const rowText = await row.innerText();
  assert.match(rowText, /running|dry run|paused|disabled|failing/, `no state in the row: ${rowText}`);
  assert.match(await row.getByTestId('group-replicas').innerText(), /\d+ \/ \d+ \/ \d+/);

  say('the group page: chart drawn, the engine scaled with its reasons shown');
  await row.getByTestId('group-link').click();
  await op.getByTestId('group-name').filter({ hasText: GROUP }).waitFor();
  await op.locator('[data-testid="chart"] canvas').first().waitFor({ timeout: WAIT });
  // At least two samples drawn (one is a dot, not a line).
  const samples = (n) =>
    op.waitForFunction((min) => Number(document.querySelector('[data-testid="chart-note"]')?.dataset.samples) >= min, n, {
      timeout: WAIT * 2,
    });
  await samples(2);
  const engineAct = op.locator('[data-testid="activity"]').filter({ hasText: 'by the engine' }).first();
  await engineAct.waitFor({ timeout: WAIT });
  const reasonsText = await engineAct.locator('[data-testid="reason"]').allInnerTexts();
  assert.ok(
    reasonsText.some((t) => t.includes('target_tracking') && t.includes('request_rate')),
    `the engine's activity does not show its strategy's reason: ${JSON.stringify(reasonsText)}`,
  );

  say('the operator scales by hand; the activity appears with its reason');
  const before = await apiCall('GET', `/groups/${encodeURIComponent(GROUP)}`, TOKENS.operator);
  assert.equal(before.status, 200, before.text);
  // The group's max: the engine never wants it with this load (so the count is not already
  // there by the time the form is sent, and the scale is a real change).
  const replicas = before.json.current === before.json.max ? before.json.max - 1 : before.json.max;
  await op.getByTestId('scale-button').click();
  await op.getByLabel('Replicas', { exact: true }).fill(String(replicas));
  await op.getByLabel('Reason', { exact: true }).fill(reason);
  await op.getByTestId('scale-submit').click();
  const mine = op.locator('[data-testid="activity"]').filter({ hasText: reason });
  await mine.waitFor({ timeout: WAIT });
  const mineText = await mine.innerText();
  assert.ok(mineText.includes(`→ ${replicas}`), `the activity does not show the new count ${replicas}: ${mineText}`);
  assert.ok(mineText.includes(`by ${NAMES.operator}`), `the activity does not name its actor: ${mineText}`);
  await mine.getByTestId('activity-status').filter({ hasText: 'succeeded' }).waitFor({ timeout: WAIT });
  assert.equal(await op.getByTestId('scale-error').innerText(), '', 'the scale form shows an error');

  if (SCREENSHOT) {
    say(`screenshot of the group page → ${SCREENSHOT}`);
    // Some history on the chart first (an evaluation a second: a bound on waiting only).
    await samples(20);
    await op.evaluate(() => window.scrollTo(0, 0));
    await op.screenshot({ path: SCREENSHOT, fullPage: false });
  }

  say('the operator pauses and resumes scale-in, disables and enables the group');
  const state = op.locator('[data-testid="group-facts"] [data-testid="group-state"]');
  const pauseIn = op.getByTestId('toggle-pause-in');
  await pauseIn.filter({ hasText: 'Pause scale-in' }).click();
  await pauseIn.filter({ hasText: 'Resume scale-in' }).waitFor({ timeout: WAIT });
  await state.filter({ hasText: 'scale-in paused' }).waitFor({ timeout: WAIT });
  await pauseIn.click();
  await pauseIn.filter({ hasText: 'Pause scale-in' }).waitFor({ timeout: WAIT });
  const toggle = op.getByTestId('toggle-enabled');
  await toggle.filter({ hasText: 'Disable' }).click();
  await toggle.filter({ hasText: 'Enable' }).waitFor({ timeout: WAIT });
  await state.filter({ hasText: 'disabled' }).waitFor({ timeout: WAIT });
  await toggle.click();
  await toggle.filter({ hasText: 'Disable' }).waitFor({ timeout: WAIT });
  await op.waitForFunction(
    () => !/disabled|paused/.test(document.querySelector('[data-testid="group-facts"] [data-testid="group-state"]')?.textContent || 'disabled'),
    null,
    { timeout: WAIT },
  );
  assert.equal(await op.getByTestId('action-error').innerText(), '', 'an action showed an error');

  // --- viewer ---------------------------------------------------------------------------
  say('the viewer sees the group but no action buttons, and a direct POST is refused');
  const viewer = await signIn('viewer');
  await openGroup(viewer);
  await viewer.locator('[data-testid="chart"] canvas').first().waitFor({ timeout: WAIT });
  assert.equal(await viewer.getByTestId('scale-button').count(), 0, 'a viewer sees the scale button');
  assert.equal(await viewer.getByTestId('toggle-enabled').count(), 0, 'a viewer sees enable/disable');
  assert.equal(await viewer.getByTestId('toggle-pause-out').count(), 0, 'a viewer sees pause');
  assert.equal(await viewer.getByRole('button', { name: /scale/i }).count(), 0, 'a viewer sees a scale button');
  assert.equal(await viewer.getByTestId('nav-audit').isVisible(), false, 'a viewer sees the Audit link');
  // The scale the operator made is visible to the viewer too.
  await viewer.locator('[data-testid="activity"]').filter({ hasText: reason }).waitFor({ timeout: WAIT });
  const refused = await apiCall('POST', `/groups/${encodeURIComponent(GROUP)}/scale`, TOKENS.viewer, {
    replicas: 1,
    reason: 'a viewer tries',
    force: false,
  });
  assert.equal(refused.status, 403, `a viewer's POST …/scale answered ${refused.status}: ${refused.text}`);
  assert.ok(refused.json?.error?.message, `a 403 without an error message: ${refused.text}`);

  // --- admin ----------------------------------------------------------------------------
  say("the admin sees the audit page with the operator's scale");
  const admin = await signIn('admin');
  await admin.getByTestId('nav-audit').click();
  await admin.getByTestId('audit-table').waitFor();
  const scaleRoute = `/groups/${GROUP}/scale`;
  const entry = admin
    .locator('[data-testid="audit-row"]')
    .filter({ hasText: scaleRoute })
    .filter({ hasText: NAMES.operator });
  await entry.first().waitFor({ timeout: WAIT });
  const entryText = await entry.first().innerText();
  assert.match(entryText, /POST/, entryText);
  assert.doesNotMatch(entryText, /refused/, `the operator's scale is shown as refused: ${entryText}`);
  // The viewer's refused POST is there too, marked refused.
  const denied = admin
    .locator('[data-testid="audit-row"]')
    .filter({ hasText: scaleRoute })
    .filter({ hasText: NAMES.viewer });
  await denied.first().waitFor({ timeout: WAIT });
  assert.match(await denied.first().innerText(), /403[\s\S]*refused/, 'the viewer\'s POST is not shown as refused');

  say('log out clears the token and shows the login form');
  await admin.getByTestId('logout').click();
  await admin.getByLabel('API token').waitFor();
  assert.equal(await admin.evaluate(() => sessionStorage.getItem('scalepilot.token')), null, 'the token was kept');

  assert.deepEqual(problems, [], `problems in the pages:\n${problems.join('\n')}`);
  console.log('dashboard.test: all checks passed');
} catch (e) {
  console.error(`dashboard.test: FAILED at "${step}":\n${e.stack || e}`);
  if (problems.length) console.error(`also:\n${problems.join('\n')}`);
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
