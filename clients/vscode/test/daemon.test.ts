/**
 * The protocol and state layer (ParleyClient, ChatSession, the view model) against the
 * real daemon: each test launches `parley stdio` with a private PARLEY_HOME, so the
 * bridge autostarts a daemon of its own, which is killed at the end.
 */

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { expect } from 'expect';
import { INSTALL_HINT, ParleyClient, type ConnectionState } from '../src/client';
import type { InitializeResult, ResponseEvent, ResponseRecord } from '../src/protocol';
import { ChatSession, MemoryStore, SNAPSHOT_KEY, type ViewUpdate } from '../src/session';
import { applyEvent, describeError, newResponse, responseFromRecord, type ResponseView } from '../src/view';
import { DaemonHome, PARLEY_BIN, alive, makeClient, recordEvents, script, slowWords, waitFor } from './helpers/daemon';
import { FIXTURE_TURNS } from './fixtures/turns';
import { FIXTURES } from './helpers/paths';

const FIXTURE = path.join(FIXTURES, 'every-part.json');
/** Each test gets this long (they start and stop real daemons). */
const T = { timeout: 90_000 };

let home: DaemonHome;
const clients: ParleyClient[] = [];
const log: string[] = [];

function client(extra = {}): ParleyClient {
  const c = makeClient(home, extra, log);
  clients.push(c);
  return c;
}

beforeEach(() => {
  if (!fs.existsSync(PARLEY_BIN)) throw new Error(`no parley executable at ${PARLEY_BIN}: set PARLEY_BIN`);
  home = new DaemonHome();
  log.length = 0;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.dispose();
  await home.cleanup();
});

function lastTurn(session: ChatSession) {
  return session.turns[session.turns.length - 1];
}

async function finished(session: ChatSession, timeoutMs = 15_000) {
  return waitFor(() => {
    const r = lastTurn(session)?.response;
    return r && r.status !== 'running' ? r : undefined;
  }, timeoutMs, 'the response to finish');
}

function textOf(view: ResponseView): string {
  return view.parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
}

/** Without ids: what the parts are. */
function shape(view: ResponseView) {
  return view.parts.map(({ index, ...rest }) => ({ index, ...rest }));
}

describe('connection', () => {
  it('launches parley stdio, autostarts the daemon and initializes', T, async () => {
    const c = client();
    const states: ConnectionState['kind'][] = [];
    c.onState((s) => states.push(s.kind));
    await c.start();
    expect(c.state.kind).toBe('connected');
    expect(states).toEqual(['connecting', 'connected']);
    const { models } = await c.request('models/list', {});
    expect(models.find((m) => m.id === 'echo')?.default).toBe(true);
    const status = await c.request('daemon/status', {});
    expect(status.pid).toBe(home.daemonPid());
  });

  it('reports a missing executable with the install hint, without retrying', T, async () => {
    const c = client({ executable: path.join(home.dir, 'no-such-parley') });
    await expect(c.start()).rejects.toThrow(/was not found/);
    expect(c.state.kind).toBe('missing');
    const state = c.state as Extract<ConnectionState, { kind: 'missing' }>;
    expect(state.message).toContain(INSTALL_HINT);
    expect(state.message).toContain('parley.executable');
    await new Promise((r) => setTimeout(r, 300));
    expect(c.state.kind).toBe('missing');
  });

  it('refuses a message over the daemon\'s size limit locally, and stays connected', T, async () => {
    // a daemon with a small limit, started before the bridge (which then uses it)
    const daemon = spawn(PARLEY_BIN, ['serve', '--max-message-size', '4096'], { env: home.env, stdio: 'ignore' });
    try {
      await waitFor(() => fs.existsSync(path.join(home.dir, 'run', 'parley.sock')), 20_000, 'the daemon socket');
      const c = client();
      await c.start();
      expect(c.state).toMatchObject({ kind: 'connected', maxMessageSize: 4096 });
      await expect(c.request('prompt', { prompt: 'x'.repeat(5000) })).rejects.toMatchObject({ kind: 'message_too_large' });
      const session = new ChatSession(c, new MemoryStore());
      await session.send('y'.repeat(5000));
      expect(lastTurn(session).response).toMatchObject({ status: 'error', error: { code: 'message_too_large' } });
      expect(describeError(lastTurn(session).response!.error!).title).toBe('The message is too large');
      await session.send('small');
      expect(textOf(await finished(session))).toBe('small');
    } finally {
      daemon.kill('SIGTERM');
    }
  });

  it('turns daemon error answers into typed errors', T, async () => {
    const c = client();
    await c.start();
    await expect(c.request('prompt', { prompt: 'hi', model: 'gpt-9' })).rejects.toMatchObject({ kind: 'unknown_model', code: -32010 });
    await expect(c.request('response/get', { responseId: 'resp_nope' })).rejects.toMatchObject({ kind: 'unknown_response' });
  });
});

describe('streaming', () => {
  it('builds every part type from the events exactly as the daemon stores it', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    const updates: ViewUpdate[] = [];
    session.onUpdate((u) => updates.push(u));
    await c.start();
    await session.send(script(...FIXTURE_TURNS[0].events));
    const view = await finished(session);
    expect(view.status).toBe('completed');
    expect(view.usage).toMatchObject({ input: 12, output: 96 });
    expect(view.parts.map((p) => p.type)).toEqual(['reasoning', 'text', 'tool_call', 'tool_result', 'attachment', 'attachment', 'text']);
    const call = view.parts[2];
    expect(call.type === 'tool_call' && JSON.parse(call.argsText)).toEqual({ city: 'Paris', unit: 'C' });
    // The daemon's own assembly of the same response matches ours.
    const record = await c.request('response/get', { responseId: view.responseId });
    const stored = responseFromRecord(record, view.lastSeq);
    expect(shape({ ...view, parts: view.parts.map((p) => (p.type === 'tool_call' ? { ...p, argsText: JSON.stringify(JSON.parse(p.argsText)) } : p)) })).toEqual(shape(stored));
    // The view got the turn, its response id, then every event once, in order.
    const events = updates.filter((u): u is Extract<ViewUpdate, { type: 'event' }> => u.type === 'event').map((u) => u.event.seq);
    expect(events).toEqual(Array.from({ length: view.lastSeq }, (_, i) => i + 1));
  });

  it('streams plain text as the echo model chunks it, and continues the conversation', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    await c.start();
    await session.send('Hello there, world');
    expect(textOf(await finished(session))).toBe('Hello there, world');
    const conversationId = session.conversationId;
    expect(conversationId).toMatch(/^conv_/);
    await session.send('And again');
    expect(textOf(await finished(session))).toBe('And again');
    expect(session.conversationId).toBe(conversationId);
    const conversation = await c.request('conversations/get', { conversationId: conversationId! });
    expect(conversation.responseIds).toHaveLength(2);
  });

  it('shows an error event as an error saying whether a retry may help', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    await c.start();
    await session.send(script(...FIXTURE_TURNS[1].events));
    const view = await finished(session);
    expect(view.status).toBe('error');
    expect(textOf(view)).toBe('Tomorrow looks ');
    expect(view.error).toEqual({ code: 'rate_limited', message: 'slow down: 60 requests per minute', retryable: true, retryAfter: 2.5 });
    const d = describeError(view.error!);
    expect(d.title).toBe('Rate limited');
    expect(d.retryHelps).toBe(true);
    expect(d.hint).toBe('Retrying may help after 2.5 s.');

    await session.send(script({ type: 'text', chunk: 'ok' }, { type: 'bogus' }));
    const bad = await finished(session);
    expect(bad.error?.code).toBe('model_error');
    expect(describeError(bad.error!).retryHelps).toBe(false);
  });

  it('shows a refused request (unknown model) on its turn', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    await c.start();
    await session.refreshModels();
    await session.setModel('gpt-9');
    await session.send('hello');
    const view = lastTurn(session).response!;
    expect(view.status).toBe('error');
    expect(view.responseId).toBe('');
    expect(view.error?.code).toBe('unknown_model');
    expect(describeError(view.error!).hint).toMatch(/pick another model/);
    await session.setModel(undefined);
    await session.send('hello');
    expect(textOf(await finished(session))).toBe('hello');
  });

  it('stop cancels the response and keeps the partial answer', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    await c.start();
    await session.send(script(...slowWords(3, 10), ...slowWords(50, 200, 'late')));
    await waitFor(() => (lastTurn(session).response!.lastSeq >= 3 ? true : undefined), 10_000, 'three events');
    await session.cancel();
    const view = await finished(session);
    expect(view.status).toBe('cancelled');
    const record = await c.request('response/get', { responseId: view.responseId });
    expect(record.status).toBe('cancelled');
    expect(textOf(view)).toMatch(/^w0 w1 w2 /);
    expect(textOf(responseFromRecord(record))).toBe(textOf(view));
    // idempotent, and the session can send again
    expect(await c.request('response/cancel', { responseId: view.responseId })).toEqual({ status: 'cancelled' });
    await session.send('after');
    expect(textOf(await finished(session))).toBe('after');
  });

  it('refuses a second message while one is running', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    await c.start();
    await session.send(script(...slowWords(20, 50)));
    await expect(session.send('more')).rejects.toThrow(/still running/);
    await session.cancel();
    await finished(session);
  });

  it('a slow reader gets merged deltas (seq..seqEnd) and takes each once, with no resubscribe', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    const received = recordEvents(c);
    let init: InitializeResult | undefined;
    c.onConnected((r) => (init = r));
    // after each event the view's lastSeq is the last seq that event stands for
    let viewSeqWrong = 0;
    session.onUpdate((u) => {
      if (u.type !== 'event') return;
      const end = 'seqEnd' in u.event && u.event.seqEnd !== undefined ? u.event.seqEnd : u.event.seq;
      if (lastTurn(session).response!.lastSeq !== end) viewSeqWrong++;
    });
    await c.start();
    expect(init?.capabilities.eventRanges).toBe(true); // the client did not opt out
    const words = 150_000; // ~20 MB of events one by one: the daemon's backlog for us passes 1 MiB
    await session.send('word '.repeat(words));
    // The extension host is busy right after the prompt was answered: nothing is read from
    // `parley stdio` meanwhile, its pipe and socket fill, and the daemon holds and merges.
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      // busy
    }
    const view = await finished(session, 60_000);
    expect(view.status).toBe('completed');
    const text = textOf(view);
    expect(text.length).toBe(5 * words);
    expect(text === 'word '.repeat(words)).toBe(true); // the text once, in order
    expect(view.lastSeq).toBe(words + 2); // the text, usage, done
    expect(viewSeqWrong).toBe(0);
    const merged = received.filter((e) => 'seqEnd' in e && e.seqEnd !== undefined);
    expect(merged.length).toBeGreaterThan(0);
    expect(merged.every((e) => e.type === 'text' && e.seqEnd! > e.seq)).toBe(true);
    expect(received.length).toBeLessThan(words);
    // each seq once, in order: every event starts right after the last one's seqEnd
    let next = 1;
    let outOfOrder = 0;
    for (const e of received) {
      if (e.seq !== next) outOfOrder++;
      next = ('seqEnd' in e && e.seqEnd !== undefined ? e.seqEnd : e.seq) + 1;
    }
    expect(outOfOrder).toBe(0);
    expect(next).toBe(words + 3);
    expect(log.filter((line) => /resubscrib/.test(line))).toEqual([]);
  });
});

describe('reattach and reconnect', () => {
  it('a reloaded window resumes a running response from its last seq', T, async () => {
    const store = new MemoryStore();
    const first = client();
    const before = new ChatSession(first, store, { saveDelayMs: 10 });
    await first.start();
    await before.send(script(...slowWords(40, 60)));
    await waitFor(() => (lastTurn(before).response!.lastSeq >= 5 ? true : undefined), 10_000, 'five events');
    await before.save();
    const saved = store.get<{ turns: Array<{ response: ResponseView }> }>(SNAPSHOT_KEY)!;
    const savedSeq = saved.turns[0].response.lastSeq;
    expect(savedSeq).toBeGreaterThanOrEqual(5);
    first.dispose(); // the window goes away; the response runs on in the daemon

    const second = client();
    const received = recordEvents(second);
    const after = new ChatSession(second, store);
    await second.start();
    await after.restore();
    const view = await finished(after, 20_000);
    expect(view.status).toBe('completed');
    expect(textOf(view)).toBe(Array.from({ length: 40 }, (_, i) => `w${i} `).join(''));
    // Only what the first window had not seen came again, each once.
    expect(received[0].seq).toBe(savedSeq + 1);
    expect(received.map((e) => e.seq)).toEqual(Array.from({ length: received.length }, (_, i) => savedSeq + 1 + i));
  });

  it('reconnects when parley stdio exits and resumes the stream with no gap and no duplicate', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    const received = recordEvents(c);
    const states: string[] = [];
    c.onState((s) => states.push(s.kind));
    await c.start();
    await session.send(script(...slowWords(30, 60)));
    await waitFor(() => (received.length >= 5 ? true : undefined), 10_000, 'five events');
    const bridge = c.bridgePid!;
    process.kill(bridge, 'SIGKILL');
    await waitFor(() => !alive(bridge), 5000, 'the bridge to die');
    const view = await finished(session, 20_000);
    expect(states).toContain('reconnecting');
    expect(c.state.kind).toBe('connected');
    expect(c.bridgePid).not.toBe(bridge);
    expect(view.status).toBe('completed');
    expect(textOf(view)).toBe(Array.from({ length: 30 }, (_, i) => `w${i} `).join(''));
    expect(received.map((e) => e.seq)).toEqual(Array.from({ length: received.length }, (_, i) => i + 1));
    expect(received[received.length - 1].type).toBe('done');
  });

  it('survives a daemon crash: the response reads back interrupted, and new prompts work', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    await c.start();
    await session.send(script(...slowWords(50, 80)));
    await waitFor(() => (lastTurn(session).response!.lastSeq >= 5 ? true : undefined), 10_000, 'five events');
    const oldPid = await home.killDaemon('SIGKILL');
    expect(oldPid).toBeDefined();
    // parley stdio exits with its daemon; the client starts it again, which starts a new daemon
    const view = await finished(session, 30_000);
    expect(view.status).toBe('interrupted');
    expect(view.error?.code).toBe('interrupted');
    expect(textOf(view)).toMatch(/^w0 w1 w2 w3 /); // the partial answer is kept
    expect(describeError(view.error!).retryHelps).toBe(true);
    expect(home.daemonPid()).not.toBe(oldPid);
    await session.send('still here');
    expect(textOf(await finished(session))).toBe('still here');
  });

  it('a daemon stopped with SIGTERM ends the stream as interrupted, then the client reconnects', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    const received = recordEvents(c);
    await c.start();
    await session.send(script(...slowWords(50, 80)));
    await waitFor(() => (received.length >= 3 ? true : undefined), 10_000, 'three events');
    await home.killDaemon('SIGTERM');
    const view = await finished(session, 20_000);
    expect(view.status).toBe('interrupted');
    expect(received.slice(-2).map((e) => e.type)).toEqual(['error', 'done']);
    await waitFor(() => (c.state.kind === 'connected' ? true : undefined), 20_000, 'a new connection');
    await session.send('back');
    expect(textOf(await finished(session))).toBe('back');
  });

  it('follows a response that another client started, from any seq', T, async () => {
    const a = client();
    const b = client();
    await Promise.all([a.start(), b.start()]);
    const started = await a.request('prompt', { prompt: script(...slowWords(12, 40)) });
    a.follow(started.responseId);
    const fromA = recordEvents(a);
    await waitFor(() => (fromA.length >= 4 ? true : undefined), 10_000, 'four events');
    const fromB = recordEvents(b);
    expect(await b.attach(started.responseId, 2)).toBeUndefined(); // running: subscribed
    await waitFor(() => (fromB.some((e) => e.type === 'done') ? true : undefined), 10_000, 'done on b');
    expect(fromB[0].seq).toBe(3);
    await waitFor(() => (fromA.some((e) => e.type === 'done') ? true : undefined), 10_000, 'done on a');
    expect(fromB).toEqual(fromA.slice(2).length ? fromA.filter((e) => e.seq > 2) : []);
    // attaching to a finished response reads back its record
    const records: ResponseRecord[] = [];
    b.onRecord((r) => records.push(r));
    const record = await b.attach(started.responseId, 0);
    expect(record?.status).toBe('completed');
    expect(records).toHaveLength(1);
  });
});

describe('history', () => {
  it('lists conversations with full-text search and resumes one', T, async () => {
    const c = client();
    const session = new ChatSession(c, new MemoryStore());
    await c.start();
    await session.send('the quick brown fox');
    await finished(session);
    await session.send('jumps over');
    await finished(session);
    const foxConversation = session.conversationId!;
    session.newChat();
    expect(session.turns).toHaveLength(0);
    await session.send('lorem ipsum');
    await finished(session);

    expect((await session.listConversations()).map((s) => s.id)).toHaveLength(2);
    const found = await session.listConversations('jumps');
    expect(found.map((s) => s.id)).toEqual([foxConversation]);
    expect(found[0].title).toBe('the quick brown fox');
    expect(await session.listConversations('nothing-matches-this')).toEqual([]);

    await session.resume(foxConversation);
    expect(session.conversationId).toBe(foxConversation);
    expect(session.turns.map((t) => t.user)).toEqual(['the quick brown fox', 'jumps over']);
    expect(session.turns.map((t) => textOf(t.response!))).toEqual(['the quick brown fox', 'jumps over']);
    expect(lastTurn(session).response!.status).toBe('completed');
    expect(lastTurn(session).response!.responseId).toMatch(/^resp_/);
    await session.send('and more');
    expect(textOf(await finished(session))).toBe('and more');
    expect(session.conversationId).toBe(foxConversation);
  });

  it('resuming a conversation whose response still runs picks up its stream', T, async () => {
    const a = client();
    const b = client();
    await Promise.all([a.start(), b.start()]);
    const other = new ChatSession(a, new MemoryStore());
    await other.send(script(...slowWords(20, 50)));
    const mine = new ChatSession(b, new MemoryStore());
    await mine.resume(other.conversationId!);
    expect(lastTurn(mine).response!.status).toBe('running');
    const view = await finished(mine);
    expect(view.status).toBe('completed');
    expect(textOf(view)).toBe(Array.from({ length: 20 }, (_, i) => `w${i} `).join(''));
  });
});

describe('the recorded event stream (test/fixtures/every-part.json)', () => {
  async function record() {
    const c = client();
    await c.start();
    const events = recordEvents(c);
    const turns: Array<{ user: string; events: ResponseEvent[] }> = [];
    let conversationId: string | undefined;
    for (const turn of FIXTURE_TURNS) {
      const started = await c.request('prompt', { prompt: script(...turn.events), ...(conversationId ? { conversationId } : {}) });
      conversationId = started.conversationId;
      c.follow(started.responseId);
      if (turn.cancelAfterSeq) {
        await waitFor(() => events.some((e) => e.responseId === started.responseId && e.seq >= turn.cancelAfterSeq!), 10_000, 'events');
        await c.request('response/cancel', { responseId: started.responseId });
      }
      await waitFor(() => events.some((e) => e.responseId === started.responseId && e.type === 'done'), 15_000, 'done');
      turns.push({ user: turn.user, events: events.filter((e) => e.responseId === started.responseId) });
    }
    return turns;
  }

  const normalize = (turns: Array<{ user: string; events: ResponseEvent[] }>) =>
    turns.map((t, i) => ({ user: t.user, events: t.events.map((e) => ({ ...e, responseId: `resp_${i}` })) }));

  it('matches what the daemon sends for the fixture scripts (RECORD_FIXTURE=1 rewrites it)', T, async () => {
    const recorded = normalize(await record());
    if (process.env.RECORD_FIXTURE) {
      fs.writeFileSync(FIXTURE, `${JSON.stringify(recorded, null, 1)}\n`);
    }
    const fixture = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));
    expect(recorded).toEqual(fixture);
    // and every part type is in it
    const types = new Set(fixture.flatMap((t: { events: ResponseEvent[] }) => t.events.map((e) => e.type)));
    for (const type of ['text', 'reasoning', 'tool_call_name', 'tool_call_args', 'tool_result', 'attachment', 'usage', 'error', 'done']) {
      expect(types).toContain(type);
    }
    // the view model built from the fixture ends as the daemon said
    const statuses = fixture.map((t: { events: ResponseEvent[] }) => {
      const view = newResponse('r');
      for (const e of t.events) applyEvent(view, e);
      return view.status;
    });
    expect(statuses).toEqual(['completed', 'error', 'cancelled', 'error']);
  });
});
