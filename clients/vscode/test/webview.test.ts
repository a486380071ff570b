/**
 * The chat page in headless Chromium (Debian's `chromium`), served with the exact HTML
 * and Content-Security-Policy the extension uses, fed the recorded event stream of every
 * part type (test/fixtures/every-part.json). The test checks the DOM, that an injection
 * attempt in model output stays inert, that nothing is fetched from the network, and saves
 * screenshots under test-output/.
 */

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { after, before, describe, it } from 'node:test';
import { expect } from 'expect';
import type { ResponseEvent } from '../src/protocol';
import type { ViewUpdate } from '../src/session';
import { chatHtml } from '../src/webviewHtml';
import { FIXTURES, OUT, ROOT } from './helpers/paths';
import CHROMIUM_FLAGS from './chromium-flags.json';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const NONCE = 'TestNonce0123456789abcdefABCDEF0';
const fixture: Array<{ user: string; events: ResponseEvent[] }> = JSON.parse(
  fs.readFileSync(path.join(FIXTURES, 'every-part.json'), 'utf8'),
);

let server: http.Server;
let origin: string;
let browser: Browser;
let page: Page;
let profile: string;
const requests: string[] = [];
const pageErrors: string[] = [];

function serve(): Promise<string> {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end(); // Chromium asks; VS Code's webviews do not
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(chatHtml({ cspSource: origin, nonce: NONCE, scriptUri: `${origin}/dist/webview.js`, styleUri: `${origin}/media/chat.css` }));
      return;
    }
    const file = path.join(ROOT, path.normalize(url.pathname));
    if (!file.startsWith(path.join(ROOT, 'dist')) && !file.startsWith(path.join(ROOT, 'media'))) {
      res.writeHead(404).end();
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) return void res.writeHead(404).end();
      const type = file.endsWith('.js') ? 'text/javascript' : file.endsWith('.css') ? 'text/css' : 'application/octet-stream';
      res.writeHead(200, { 'content-type': type });
      res.end(data);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

async function post(...updates: Array<ViewUpdate | Record<string, unknown>>): Promise<void> {
  await page.evaluate((list) => {
    for (const u of list) window.postMessage(u, '*');
  }, updates);
  await settle();
}

/** Waits until posted messages are handled and the next frames are rendered. */
async function settle(): Promise<void> {
  await page.evaluate(() => new Promise<void>((r) => setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(() => r())), 0)));
}

async function posted(): Promise<Array<Record<string, unknown>>> {
  return page.evaluate(() => (window as unknown as { __posted: Array<Record<string, unknown>> }).__posted);
}

async function screenshot(name: string): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  const height = await page.evaluate(() => {
    const t = document.getElementById('transcript')!;
    return t.scrollHeight + (document.body.scrollHeight - t.clientHeight) + 8;
  });
  await page.setViewport({ width: 560, height: Math.min(Math.max(height, 600), 6000) });
  await settle();
  await page.screenshot({ path: path.join(OUT, name) as `${string}.png` });
  await page.setViewport({ width: 560, height: 900 });
}

const text = (selector: string) => page.$eval(selector, (e) => (e as HTMLElement).innerText);

before(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_BIN)`);
  if (!fs.existsSync(path.join(ROOT, 'dist', 'webview.js'))) execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT });
  origin = await serve();
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-chromium-'));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: CHROMIUM_FLAGS,
  });
  page = await browser.newPage();
  await page.setViewport({ width: 560, height: 900 });
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  await page.evaluateOnNewDocument(() => {
    const w = window as unknown as Record<string, unknown>;
    const sent: unknown[] = [];
    const violations: string[] = [];
    w.__posted = sent;
    w.__violations = violations;
    w.acquireVsCodeApi = () => ({ postMessage: (m: unknown) => sent.push(m), getState: () => undefined, setState: () => {} });
    document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(origin, { waitUntil: 'load' });
  await page.waitForFunction(() => (window as unknown as { __posted: Array<{ type: string }> }).__posted.some((m) => m.type === 'ready'));
});

after(async () => {
  await browser?.close();
  server?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

describe('the chat webview', () => {
  it('serves a strict Content-Security-Policy', { timeout: 60_000 }, async () => {
    const csp = await page.$eval('meta[http-equiv="Content-Security-Policy"]', (m) => m.getAttribute('content')!);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`script-src 'nonce-${NONCE}'`);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
  });

  it('renders the recorded stream of every part type', { timeout: 60_000 }, async () => {
    await post({
      type: 'snapshot',
      snapshot: { turns: [] },
      models: [{ id: 'echo', provider: 'builtin', aliases: [], default: true, capabilities: { tools: true, reasoning: true } }],
      connection: { kind: 'connected', serverVersion: '0.1.0', maxMessageSize: 67108864 },
    });
    expect(await page.$eval('#model', (s) => (s as HTMLSelectElement).selectedOptions[0].textContent)).toBe('Default (echo)');
    expect(await text('#connection')).toBe('connected');

    for (const [i, turn] of fixture.entries()) {
      const turnId = `t${i}`;
      const responseId = turn.events[0].responseId;
      await post(
        { type: 'turn', turn: { id: turnId, user: turn.user, response: { responseId: '', model: 'echo', status: 'running', parts: [], lastSeq: 0 } } },
        { type: 'response', turnId, response: { responseId, model: 'echo', status: 'running', parts: [], lastSeq: 0 } },
      );
      // stream it: the running state shows a stop button
      const [first, ...rest] = turn.events;
      await post({ type: 'event', turnId, event: first });
      if (i === 0) {
        expect(await page.$eval('#stop', (b) => (b as HTMLElement).hidden)).toBe(false);
        expect(await page.$eval('#send', (b) => (b as HTMLButtonElement).disabled)).toBe(true);
        expect(await page.$eval('[data-turn-id="t0"] .reasoning summary', (s) => s.textContent)).toBe('Thinking…');
      }
      // an event seen twice (a replay after a reconnect) is applied once
      await post({ type: 'event', turnId, event: first }, ...rest.map((event) => ({ type: 'event', turnId, event })));
    }
    expect(await page.$eval('#stop', (b) => (b as HTMLElement).hidden)).toBe(true);

    // turn 0: reasoning, text, tool call + result, image attachments, markdown, usage
    const t0 = '[data-turn-id="t0"]';
    expect(await page.$eval(`${t0} details.reasoning`, (d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await page.$eval(`${t0} details.reasoning summary`, (s) => s.textContent)).toBe('Reasoning');
    expect(await page.$eval(`${t0} details.reasoning .reasoning-body`, (s) => s.textContent)).toContain(
      'The user wants the weather in Paris, so I should call the weather tool first.',
    );
    expect(await text(`${t0} .part.text`)).toBe('Let me look that up.');
    const card = `${t0} .tool-card[data-tool-call-id="call_1"]:not(.standalone-result)`;
    expect(await text(`${card} .tool-name`)).toBe('get_weather');
    expect(await text(`${card} .tool-state`)).toBe('done');
    expect(JSON.parse(await page.$eval(`${card} .tool-args pre`, (p) => p.textContent!))).toEqual({ city: 'Paris', unit: 'C' });
    expect(await page.$eval(`${card} .tool-args pre`, (p) => p.textContent)).toContain('\n  "city": "Paris"');
    expect(await page.$eval(`${card} .tool-result pre`, (p) => p.textContent)).toBe('{"temp": 18, "sky": "sunny"}');
    expect(await page.$eval(`${card} .tool-result .tool-label`, (p) => p.textContent)).toBe('Result (run by the provider)');
    expect(await page.$eval(`${t0} .standalone-result`, (p) => (p as HTMLElement).hidden)).toBe(true);
    const image = await page.$eval(`${t0} .attachment img`, (img) => ({
      src: (img as HTMLImageElement).src.slice(0, 22),
      width: (img as HTMLImageElement).naturalWidth,
    }));
    expect(image).toEqual({ src: 'data:image/png;base64,', width: 96 });
    expect(await page.$eval(`${t0} .attachment a.external`, (a) => a.getAttribute('href'))).toBe('https://example.com/map.png');
    expect(await page.$$eval(`${t0} img`, (imgs) => imgs.length)).toBe(1); // the remote one is a link, not loaded
    const md = `${t0} .part.text:last-of-type`;
    expect(await text(`${md} h2`)).toBe('Weather in Paris');
    expect(await page.$$eval(`${md} li code`, (c) => c.map((e) => e.textContent))).toEqual(['get_weather', 'temp']);
    expect(await page.$eval(`${md} strong`, (s) => s.textContent)).toBe('18°C');
    expect(await page.$$eval(`${md} .code-block .code-lang`, (c) => c.map((e) => e.textContent))).toEqual(['typescript', 'python']);
    expect(await page.$$eval(`${md} code.language-typescript .hljs-keyword`, (k) => k.map((e) => e.textContent))).toEqual(
      expect.arrayContaining(['async', 'function', 'const', 'await', 'return']),
    );
    expect(await page.$$eval(`${md} code.language-python .hljs-keyword`, (k) => k.map((e) => e.textContent))).toContain('def');
    expect(await text(`${t0} .meta`)).toBe('12 tokens in, 96 out');

    // the copy button sends the code (not its markup) to the host
    await page.click(`${md} .code-block button.copy`);
    const copied = (await posted()).filter((m) => m.type === 'copy');
    expect(copied).toHaveLength(1);
    expect(copied[0].text).toBe(
      'async function weather(city: string): Promise<number> {\n  const res = await fetch(`/weather?city=${city}`);\n  return (await res.json()).temp; // degrees Celsius\n}\n',
    );
    expect(await page.$eval(`${md} .code-block button.copy`, (b) => b.textContent)).toBe('Copied');
    // links open outside the webview, through the host
    await page.click(`${md} a[href="https://example.com/docs"]`);
    expect((await posted()).filter((m) => m.type === 'openExternal')).toEqual([{ type: 'openExternal', url: 'https://example.com/docs' }]);
    expect(page.url()).toBe(`${origin}/`);

    // turn 1: an error banner that says what happened and that a retry may help
    const t1 = '[data-turn-id="t1"]';
    expect(await page.$eval(`${t1} .part.text p`, (p) => p.textContent)).toBe('Tomorrow looks');
    expect(await page.$eval(`${t1} .banner.error`, (b) => b.getAttribute('role'))).toBe('alert');
    expect(await text(`${t1} .banner-title`)).toBe('Rate limited');
    expect(await text(`${t1} .banner-message`)).toBe('slow down: 60 requests per minute');
    expect(await text(`${t1} .banner-hint`)).toBe('Retrying may help after 2.5 s.');
    await page.click(`${t1} .banner button.retry`);
    expect((await posted()).filter((m) => m.type === 'retry')).toEqual([{ type: 'retry', turnId: 't1' }]);

    // turn 2: stopped, the partial answer stays
    const t2 = '[data-turn-id="t2"]';
    expect(await text(`${t2} .part.text`)).toBe('Once upon a time there was a daemon');
    expect(await text(`${t2} .status`)).toBe('stopped');
    expect(await text(`${t2} .meta`)).toBe('Stopped: the partial answer is kept.');
    expect(await page.$(`${t2} .banner`)).toBeNull();

    await screenshot('webview.png');
    expect(pageErrors).toEqual([]);
  });

  it('keeps an injection attempt in model output inert', { timeout: 60_000 }, async () => {
    const t3 = '[data-turn-id="t3"]';
    // the payloads are shown as text
    const shown = await text(`${t3}`);
    expect(shown).toContain('<script>window.__pwned = "script"</script>');
    expect(shown).toContain(`<img src=x onerror="window.__pwned = 'img'">`);
    expect(shown).toContain('<iframe src="https://evil.example/"></iframe>');
    expect(shown).toContain('What does <script>window.__pwned = "user"</script> do?');
    expect(await text(`${t3} .tool-name`)).toBe(`<b onmouseover="window.__pwned='tool'">run</b>`);
    expect(await page.$eval(`${t3} .tool-args pre`, (p) => p.textContent)).toContain("</pre><script>window.__pwned='args'</script>");
    expect(await text(`${t3} .banner-message`)).toBe(`<img src=x onerror="window.__pwned='error'">`);
    expect(await text(`${t3} .banner-title`)).toBe('The provider reported an error'); // an unknown kind reads as provider_error

    // nothing became markup: no foreign elements, no handlers, no javascript: links
    const dom = await page.evaluate(() => {
      const all = [...document.querySelectorAll('*')];
      return {
        scripts: [...document.scripts].map((s) => s.src),
        iframes: document.querySelectorAll('iframe, object, embed, svg, style').length,
        handlers: all.flatMap((e) => [...e.attributes].filter((a) => a.name.startsWith('on')).map((a) => `${e.tagName} ${a.name}`)),
        jsLinks: all.filter((e) => /^\s*javascript:/i.test(e.getAttribute('href') ?? '') || /^\s*javascript:/i.test(e.getAttribute('src') ?? '')).length,
        images: [...document.images].map((i) => i.src.slice(0, 22)),
        boldInTool: document.querySelectorAll('.tool-name b').length,
      };
    });
    expect(dom.scripts).toEqual([`${origin}/dist/webview.js`]);
    expect(dom.iframes).toBe(0);
    expect(dom.handlers).toEqual([]);
    expect(dom.jsLinks).toBe(0);
    expect(dom.images).toEqual(['data:image/png;base64,']); // turn 0's picture only
    expect(dom.boldInTool).toBe(0);
    // the image with a hostile mime type is not an image; the markdown image is a plain link
    expect(await page.$$eval(`${t3} .attachment-type`, (e) => e.map((x) => x.textContent))).toEqual([
      `image/png" onerror="window.__pwned='mime'`,
      'text/html',
    ]);
    expect(await page.$eval(`${t3} a.image-link`, (a) => a.getAttribute('href'))).toBe('https://evil.example/pixel.png');

    // poke at it: hover and click everything that could carry a handler
    await page.hover(`${t3} .tool-name`);
    const clickable = await page.$$(`${t3} .part.text a, ${t3} .part.text code`);
    for (const el of clickable) await el.click().catch(() => {});
    await page.$$eval(`${t3} details`, (ds) => ds.forEach((d) => ((d as HTMLDetailsElement).open = true)));
    await settle();
    expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined();
    // the CSP never had to block anything: nothing tried to run or load
    expect(await page.evaluate(() => (window as unknown as { __violations: string[] }).__violations)).toEqual([]);
    // and nothing was fetched but the page's own files
    expect(requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:'))).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.setViewport({ width: 560, height: 3000 });
    await (await page.$(t3))!.screenshot({ path: path.join(OUT, 'webview-injection.png') as `${string}.png` });
    await page.setViewport({ width: 560, height: 900 });
  });

  it('shows the connection state and the install hint when parley is missing', { timeout: 60_000 }, async () => {
    await post({
      type: 'connection',
      state: {
        kind: 'missing',
        executable: 'parley',
        message: 'The parley executable `parley` was not found. Install parley, then put `parley` on your PATH or set the `parley.executable` setting to its full path.',
      },
    });
    expect(await text('#connection')).toBe('not installed');
    expect(await text('.connection-banner .banner-title')).toBe('parley is not installed');
    expect(await text('.connection-banner .banner-message')).toContain('parley.executable');
    await page.click('.connection-banner button');
    expect((await posted()).some((m) => m.type === 'openSettings')).toBe(true);
    await post({ type: 'connection', state: { kind: 'reconnecting', attempt: 2, retryInMs: 500, reason: 'parley stdio exited' } });
    expect(await text('.connection-banner .banner-title')).toBe('Reconnecting to the parley daemon…');
    await post({ type: 'connection', state: { kind: 'connected', serverVersion: '0.1.0', maxMessageSize: 1 } });
    expect(await page.$('.connection-banner')).toBeNull();
  });

  it('sends with Enter, stops with the stop button, and a snapshot replaces the transcript', { timeout: 60_000 }, async () => {
    await page.type('#input', 'Hello from the composer');
    await page.keyboard.press('Enter');
    expect((await posted()).filter((m) => m.type === 'send')).toEqual([{ type: 'send', text: 'Hello from the composer' }]);
    expect(await page.$eval('#input', (i) => (i as HTMLTextAreaElement).value)).toBe('');

    await post({
      type: 'snapshot',
      snapshot: {
        turns: [{ id: 'r1', user: 'resumed question', response: { responseId: 'resp_r', model: 'echo', status: 'running', parts: [{ index: 0, type: 'text', text: 'half an ans' }], lastSeq: 4 } }],
      },
      models: [],
      connection: { kind: 'connected', serverVersion: '0.1.0', maxMessageSize: 1 },
    });
    expect(await page.$$eval('section.turn', (s) => s.length)).toBe(1);
    // the stream resumes after seq 4: seq 4 again is ignored, 5 continues the text
    await post(
      { type: 'event', turnId: 'r1', event: { type: 'text', chunk: 'DUP', partIndex: 0, messageIndex: 0, responseId: 'resp_r', seq: 4 } },
      { type: 'event', turnId: 'r1', event: { type: 'text', chunk: 'wer', partIndex: 0, messageIndex: 0, responseId: 'resp_r', seq: 5 } },
    );
    expect(await text('[data-turn-id="r1"] .part.text')).toBe('half an answer');
    await page.click('#stop');
    expect((await posted()).filter((m) => m.type === 'cancel')).toHaveLength(1);
    await post({ type: 'event', turnId: 'r1', event: { type: 'done', status: 'cancelled', responseId: 'resp_r', seq: 6 } });
    expect(await page.$eval('#stop', (b) => (b as HTMLElement).hidden)).toBe(true);
    expect(await text('[data-turn-id="r1"] .part.text')).toBe('half an answer');
    expect(pageErrors).toEqual([]);
  });
});
