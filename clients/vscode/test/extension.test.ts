/**
 * The extension glue (extension.ts, chatView.ts) with a mocked `vscode` module
 * (jest-mock-vscode) and, mostly, a fake client: commands, the chat view and its
 * Content-Security-Policy, the status bar, the webview's messages, and resuming after a
 * reload. The client and session themselves are tested against the daemon.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createTextDocument } from 'jest-mock-vscode';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { expect } from 'expect';
import * as vscode from 'vscode';
import { ChatViewProvider } from '../src/chatView';
import { INSTALL_HINT, ParleyError, type ClientOptions, type ConnectionState, type ParleyClient } from '../src/client';
import { activateWith, COMMANDS, deactivate, type ParleyExtension } from '../src/extension';
import type { WebviewMessage } from '../src/messages';
import type { ResponseEvent, ResponseRecord } from '../src/protocol';
import { MemoryStore, MODEL_KEY, SNAPSHOT_KEY, type ViewUpdate } from '../src/session';
import { ROOT } from './helpers/paths';
import { mocker } from './mocks/vscode';

const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const mocked = (x: unknown) => x as any;
const win = mocked(vscode.window);
const commands = mocked(vscode.commands);
const env = mocked(vscode.env);

type Listener<T> = (v: T) => void;
class Emitter<T> {
  listeners = new Set<Listener<T>>();
  on = (l: Listener<T>) => {
    this.listeners.add(l);
    return { dispose: () => this.listeners.delete(l) };
  };
  fire(v: T) {
    for (const l of [...this.listeners]) l(v);
  }
}

/** Stands in for ParleyClient: records requests and lets the test push events and states. */
class FakeClient {
  state: ConnectionState = { kind: 'idle' };
  readonly calls: Array<{ method: string; params: Record<string, unknown> }> = [];
  responses = 0;
  handlers: Record<string, (params: Record<string, unknown>) => unknown> = {
    'models/list': () => ({
      models: [
        { id: 'echo', provider: 'builtin', aliases: [], default: true, capabilities: { tools: true } },
        { id: 'big-model', provider: 'openai', aliases: ['big'], capabilities: {} },
      ],
    }),
    prompt: (p) => ({ responseId: `resp_${++this.responses}`, conversationId: (p.conversationId as string) ?? 'conv_1' }),
    'response/cancel': () => ({ status: 'cancelled' }),
    'conversations/list': (p) => ({
      conversations: p.query
        ? [{ id: 'conv_fox', title: 'the quick brown fox', model: 'echo', createdAt: '2026-11-21T08:00:00.000Z', updatedAt: '2026-11-21T08:01:00.000Z', responseCount: 2 }]
        : [],
    }),
    'conversations/get': (p) => ({
      id: p.conversationId,
      title: 'the quick brown fox',
      messages: [
        { role: 'user', parts: [{ type: 'text', text: 'the quick brown fox' }] },
        { role: 'assistant', parts: [{ type: 'text', text: 'the quick brown fox' }] },
      ],
      responseIds: ['resp_fox'],
    }),
    'response/get': (p) =>
      ({
        id: p.responseId as string,
        conversationId: 'conv_fox',
        model: 'echo',
        status: 'completed',
        prompt: { messages: [] },
        messages: [{ role: 'assistant', parts: [{ type: 'text', text: 'the quick brown fox' }] }],
        createdAt: '2026-11-21T08:00:00.000Z',
      }) satisfies ResponseRecord,
  };
  readonly stateE = new Emitter<ConnectionState>();
  readonly eventE = new Emitter<ResponseEvent>();
  readonly recordE = new Emitter<ResponseRecord>();
  readonly lostE = new Emitter<{ responseId: string; error: ParleyError }>();
  readonly connectedE = new Emitter<unknown>();
  onState = this.stateE.on;
  onEvent = this.eventE.on;
  onRecord = this.recordE.on;
  onLost = this.lostE.on;
  onConnected = this.connectedE.on;
  constructor(readonly options: ClientOptions) {}
  setState(state: ConnectionState) {
    this.state = state;
    this.stateE.fire(state);
  }
  start = mocker.fn(() => {
    this.setState({ kind: 'connected', serverVersion: '0.1.0', maxMessageSize: 1 << 26 });
    this.connectedE.fire({});
    return Promise.resolve();
  });
  restart = mocker.fn(() => this.start());
  ready = mocker.fn(async () => {
    if (this.state.kind !== 'connected') throw new ParleyError('not connected', 'not_connected');
  });
  request = mocker.fn(async (method: string, params: Record<string, unknown>) => {
    this.calls.push({ method, params });
    const handler = this.handlers[method];
    if (!handler) throw new ParleyError(`no fake for ${method}`, 'method_not_found');
    return handler(params);
  });
  follow = mocker.fn();
  unfollow = mocker.fn();
  attach = mocker.fn(async (_responseId: string, _afterSeq: number) => undefined);
  dispose = mocker.fn();
  requests(method: string) {
    return this.calls.filter((c) => c.method === method).map((c) => c.params);
  }
}

function fakeWebviewView() {
  const posted: ViewUpdate[] = [];
  let handler: ((m: unknown) => void) | undefined;
  const webview = {
    options: {} as vscode.WebviewOptions,
    html: '',
    cspSource: 'https://file+.vscode-resource.vscode-cdn.net',
    asWebviewUri: (uri: vscode.Uri) => ({ toString: () => `https://file+.vscode-resource.vscode-cdn.net${uri.path}` }),
    postMessage: mocker.fn(async (m: ViewUpdate) => {
      posted.push(m);
      return true;
    }),
    onDidReceiveMessage: (h: (m: unknown) => void) => {
      handler = h;
      return { dispose() {} };
    },
  };
  const view = { webview, visible: true, onDidDispose: () => ({ dispose() {} }), show: mocker.fn() };
  return { view, webview, posted, send: (m: unknown) => handler?.(m) };
}

function makeContext(store = new MemoryStore()) {
  return {
    subscriptions: [] as Array<{ dispose(): unknown } | undefined>,
    workspaceState: store,
    globalState: new MemoryStore(),
    extensionUri: vscode.Uri.file(ROOT),
    extension: { packageJSON: manifest },
  } as unknown as vscode.ExtensionContext & { workspaceState: MemoryStore };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

let fake: FakeClient;
let ext: ParleyExtension;
let context: ReturnType<typeof makeContext>;
let statusBar: { text: string; tooltip?: string; backgroundColor?: { id: string }; command?: string; show: () => void };

function activate(store?: MemoryStore): ParleyExtension {
  context = makeContext(store);
  ext = activateWith(context, {
    createClient: (options) => {
      fake = new FakeClient(options);
      return fake as unknown as ParleyClient;
    },
  });
  statusBar = ext.statusBar as unknown as typeof statusBar;
  return ext;
}

function command(id: string): (...args: unknown[]) => Promise<unknown> {
  const call = commands.registerCommand.mock.calls.find((c: unknown[]) => c[0] === id);
  if (!call) throw new Error(`command ${id} is not registered`);
  return call[1];
}

function resolveView() {
  const provider = win.registerWebviewViewProvider.mock.calls[0][1] as ChatViewProvider;
  const fakeView = fakeWebviewView();
  provider.resolveWebviewView(fakeView.view as unknown as vscode.WebviewView);
  return fakeView;
}

beforeEach(() => {
  win.createOutputChannel.mockReturnValue({ info: mocker.fn(), warn: mocker.fn(), error: mocker.fn(), show: mocker.fn(), dispose: mocker.fn() });
  win.registerWebviewViewProvider.mockReturnValue({ dispose() {} });
  commands.registerCommand.mockImplementation(() => ({ dispose() {} }));
});

afterEach(async () => {
  await deactivate();
  for (const d of context?.subscriptions ?? []) d?.dispose();
  mocker.clearAllMocks();
  win.activeTextEditor = undefined;
});

describe('activation', () => {
  it('registers the chat view and every command the manifest declares', () => {
    activate();
    expect(win.registerWebviewViewProvider).toHaveBeenCalledWith('parley.chat', expect.any(ChatViewProvider), expect.anything());
    const registered = commands.registerCommand.mock.calls.map((c: unknown[]) => c[0]).sort();
    const declared = manifest.contributes.commands.map((c: { command: string }) => c.command).sort();
    expect(registered).toEqual(declared);
    expect(Object.values(COMMANDS).sort()).toEqual(declared);
    expect(manifest.contributes.views.parley[0]).toMatchObject({ type: 'webview', id: 'parley.chat' });
    // the executable comes from the setting, defaulting to `parley`, and is launched lazily
    expect(fake.options.executable).toBe('parley');
    expect(fake.options.clientInfo).toEqual({ name: 'parley-vscode', version: manifest.version });
    expect(fake.start).not.toHaveBeenCalled();
    expect(statusBar.text).toBe('$(comment-discussion) parley');
    expect(statusBar.command).toBe(COMMANDS.showStatus);
  });
});

describe('the chat view', () => {
  it('serves the page with a strict CSP and the bundled script and stylesheet', () => {
    activate();
    const { webview } = resolveView();
    expect(webview.options).toMatchObject({ enableScripts: true, enableCommandUris: false });
    expect((webview.options.localResourceRoots ?? []).map((u) => u.path)).toEqual([path.join(ROOT, 'dist'), path.join(ROOT, 'media')]);
    const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(webview.html)![1];
    const nonce = /'nonce-([A-Za-z0-9]{32})'/.exec(csp)![1];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`img-src ${webview.cspSource} data:`);
    expect(csp).toContain(`style-src ${webview.cspSource};`);
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
    expect(webview.html).toContain(`<script nonce="${nonce}" src="https://file+.vscode-resource.vscode-cdn.net${path.join(ROOT, 'dist', 'webview.js')}"></script>`);
    expect(webview.html).toContain(`href="https://file+.vscode-resource.vscode-cdn.net${path.join(ROOT, 'media', 'chat.css')}"`);
    expect(webview.html.match(/<script/g)).toHaveLength(1);
    // a fresh nonce per page
    const again = resolveView();
    expect(again.webview.html).not.toContain(nonce);
  });

  it('connects when the view loads, sends the snapshot, and streams a conversation into it', async () => {
    activate();
    const view = resolveView();
    view.send({ type: 'ready' });
    await flush();
    expect(fake.start).toHaveBeenCalledTimes(1);
    expect(view.posted[0]).toMatchObject({ type: 'snapshot', snapshot: { turns: [] }, connection: { kind: 'idle' } });
    await flush();
    expect(view.posted.some((u) => u.type === 'models')).toBe(true);

    view.send({ type: 'send', text: 'Hello' });
    await flush();
    await flush();
    expect(fake.requests('prompt')).toEqual([{ prompt: 'Hello' }]);
    expect(fake.follow).toHaveBeenCalledWith('resp_1', 0);
    expect(statusBar.text).toBe('$(loading~spin) parley');
    fake.eventE.fire({ type: 'text', chunk: 'Hi', partIndex: 0, messageIndex: 0, responseId: 'resp_1', seq: 1 });
    fake.eventE.fire({ type: 'done', status: 'completed', responseId: 'resp_1', seq: 2 });
    const types = view.posted.map((u) => u.type);
    expect(types).toEqual(expect.arrayContaining(['turn', 'response', 'event']));
    expect(view.posted.filter((u) => u.type === 'event').map((u) => (u as { event: ResponseEvent }).event.seq)).toEqual([1, 2]);
    expect(ext.session.turns[0].response).toMatchObject({ status: 'completed', parts: [{ type: 'text', text: 'Hi' }] });
    expect(statusBar.text).toBe('$(comment-discussion) parley');

    // the next message continues the conversation
    view.send({ type: 'send', text: 'More' });
    await flush();
    await flush();
    expect(fake.requests('prompt')[1]).toEqual({ prompt: 'More', conversationId: 'conv_1' });
  });

  it('acts on the webview messages and refuses anything but web links', async () => {
    activate();
    const view = resolveView();
    view.send({ type: 'copy', text: 'const x = 1;\n' });
    view.send({ type: 'openExternal', url: 'javascript:alert(1)' });
    view.send({ type: 'openExternal', url: 'command:workbench.action.terminal.new' });
    view.send({ type: 'openExternal', url: 'file:///etc/passwd' });
    view.send({ type: 'openExternal', url: 'https://example.com/docs' });
    view.send({ type: 'bogus' });
    view.send({ type: 'send' }); // no text: ignored
    view.send({ type: 'openSettings' });
    await flush();
    expect(env.clipboard.writeText).toHaveBeenCalledWith('const x = 1;\n');
    expect(env.openExternal).toHaveBeenCalledTimes(1);
    expect(String(env.openExternal.mock.calls[0][0])).toBe('https://example.com/docs');
    expect(fake.request).not.toHaveBeenCalled();
    expect(commands.executeCommand).toHaveBeenCalledWith('workbench.action.openSettings', 'parley.executable');
  });
});

describe('commands', () => {
  it('asks about the selection with its file name and language', async () => {
    activate();
    const doc = createTextDocument(vscode.Uri.file('/ws/src/app.ts'), 'import x from "y";\nfunction slow() {\n  return x.map(f);\n}\n', 'typescript');
    win.activeTextEditor = { document: doc, selection: new vscode.Selection(1, 0, 3, 1) };
    mocked(vscode.workspace).asRelativePath.mockReturnValue('src/app.ts');
    win.showInputBox.mockResolvedValue('Why is this slow?');
    await command(COMMANDS.askSelection)();
    expect(commands.executeCommand).toHaveBeenCalledWith('parley.chat.focus');
    const [sent] = fake.requests('prompt');
    expect(sent.prompt).toBe('Why is this slow?\n\nFrom `src/app.ts` (typescript), lines 2-4:\n\n```typescript\nfunction slow() {\n  return x.map(f);\n}\n```\n');
  });

  it('does not ask without a selection, or when the question is dismissed', async () => {
    activate();
    await command(COMMANDS.askSelection)();
    expect(win.showInformationMessage).toHaveBeenCalledWith(expect.stringContaining('select the code'));
    const doc = createTextDocument(vscode.Uri.file('/ws/a.py'), 'print(1)\n', 'python');
    win.activeTextEditor = { document: doc, selection: new vscode.Selection(0, 0, 0, 8) };
    win.showInputBox.mockResolvedValue(undefined);
    await command(COMMANDS.askSelection)();
    expect(fake.requests('prompt')).toEqual([]);
  });

  it('picks a model from models/list and uses it for new messages', async () => {
    activate();
    win.showQuickPick.mockImplementation(async (items: Array<{ label: string; model: string }>) => items.find((i) => i.model === 'big-model'));
    await command(COMMANDS.pickModel)();
    const items = win.showQuickPick.mock.calls[0][0];
    expect(items.map((i: { label: string }) => i.label)).toEqual(['Default model', 'echo', 'big-model']);
    expect(items[1].description).toBe('builtin · default');
    expect(ext.session.model).toBe('big-model');
    expect(context.workspaceState.get(MODEL_KEY)).toBe('big-model');
    await ext.handleMessage({ type: 'send', text: 'hi' });
    expect(fake.requests('prompt')).toEqual([{ prompt: 'hi', model: 'big-model' }]);
    // the webview's picker sets it too; '' is the daemon's default
    await ext.handleMessage({ type: 'setModel', model: '' });
    expect(ext.session.model).toBeUndefined();
  });

  it('opens a conversation from the history, searched with conversations/list', async () => {
    activate();
    const handlers: Record<string, (v?: unknown) => unknown> = {};
    const quickPick = {
      items: [] as Array<{ label: string; id: string; alwaysShow?: boolean }>,
      selectedItems: [] as unknown[],
      busy: false,
      show: mocker.fn(),
      hide: mocker.fn(() => handlers.hide?.()),
      dispose: mocker.fn(),
      onDidChangeValue: (h: (v?: unknown) => unknown) => ((handlers.value = h), { dispose() {} }),
      onDidAccept: (h: (v?: unknown) => unknown) => ((handlers.accept = h), { dispose() {} }),
      onDidHide: (h: (v?: unknown) => unknown) => ((handlers.hide = h), { dispose() {} }),
    };
    win.createQuickPick.mockReturnValue(quickPick);
    await command(COMMANDS.openConversation)();
    await flush();
    expect(fake.requests('conversations/list')).toEqual([{ limit: 50 }]);
    handlers.value('fox');
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.requests('conversations/list')[1]).toEqual({ limit: 50, query: 'fox' });
    expect(quickPick.items).toHaveLength(1);
    expect(quickPick.items[0]).toMatchObject({ label: 'the quick brown fox', id: 'conv_fox', alwaysShow: true });
    quickPick.selectedItems = [quickPick.items[0]];
    await handlers.accept();
    expect(fake.requests('conversations/get')).toEqual([{ conversationId: 'conv_fox' }]);
    expect(ext.session.conversationId).toBe('conv_fox');
    expect(ext.session.turns.map((t) => t.user)).toEqual(['the quick brown fox']);
    expect(quickPick.dispose).toHaveBeenCalled();
  });

  it('cancel stops the running response; new chat clears the panel', async () => {
    activate();
    await ext.handleMessage({ type: 'send', text: 'long' });
    await command(COMMANDS.cancel)();
    expect(fake.requests('response/cancel')).toEqual([{ responseId: 'resp_1' }]);
    fake.eventE.fire({ type: 'done', status: 'cancelled', responseId: 'resp_1', seq: 1 });
    expect(ext.session.turns[0].response?.status).toBe('cancelled');
    await command(COMMANDS.newChat)();
    expect(ext.session.turns).toHaveLength(0);
    expect(commands.executeCommand).toHaveBeenCalledWith('parley.chat.focus');
  });
});

describe('connection state', () => {
  it('shows the connection state in the status bar', () => {
    activate();
    fake.setState({ kind: 'connecting', attempt: 1 });
    expect(statusBar.text).toBe('$(sync~spin) parley');
    fake.setState({ kind: 'connected', serverVersion: '0.1.0', maxMessageSize: 1 });
    expect(statusBar.tooltip).toBe('parley: connected to parleyd 0.1.0');
    fake.setState({ kind: 'reconnecting', attempt: 2, retryInMs: 500, reason: 'parley stdio exited' });
    expect(statusBar.text).toBe('$(sync~spin) parley: reconnecting');
    expect(statusBar.backgroundColor?.id).toBe('statusBarItem.warningBackground');
    fake.setState({ kind: 'missing', executable: 'parley', message: `The parley executable \`parley\` was not found. ${INSTALL_HINT}` });
    expect(statusBar.text).toBe('$(error) parley: not installed');
    expect(statusBar.backgroundColor?.id).toBe('statusBarItem.errorBackground');
    expect(win.showErrorMessage).toHaveBeenCalledWith(expect.stringContaining(INSTALL_HINT), 'Open Settings', 'Retry');
  });

  it('says clearly when the parley executable is missing (real client)', async () => {
    const getConfiguration = mocked(vscode.workspace).getConfiguration;
    const original = getConfiguration.getMockImplementation();
    getConfiguration.mockImplementation(() => ({ get: () => '/nonexistent/bin/parley' }));
    try {
      context = makeContext();
      ext = activateWith(context, {});
      expect(ext.client.state.kind).toBe('idle');
      await ext.handleMessage({ type: 'send', text: 'hello' });
      expect(ext.client.state.kind).toBe('missing');
      const messages = win.showErrorMessage.mock.calls.map((c: unknown[]) => String(c[0]));
      expect(messages.some((m: string) => m.includes('`/nonexistent/bin/parley` was not found') && m.includes(INSTALL_HINT))).toBe(true);
      expect((ext.statusBar as unknown as typeof statusBar).text).toBe('$(error) parley: not installed');
    } finally {
      getConfiguration.mockImplementation(original);
    }
  });

  it('a reloaded window resumes the running response from its last seq', async () => {
    const store = new MemoryStore();
    store.update(SNAPSHOT_KEY, {
      version: 1,
      conversationId: 'conv_1',
      turns: [
        { id: 't1', user: 'tell me', response: { responseId: 'resp_9', model: 'echo', status: 'running', parts: [{ index: 0, type: 'text', text: 'Once' }], lastSeq: 7 } },
      ],
    });
    activate(store);
    await flush();
    await flush();
    expect(fake.start).toHaveBeenCalled();
    expect(fake.attach).toHaveBeenCalledWith('resp_9', 7);
    expect(ext.session.turns[0].response?.parts).toEqual([{ index: 0, type: 'text', text: 'Once' }]);
    fake.eventE.fire({ type: 'text', chunk: ' upon', partIndex: 0, messageIndex: 0, responseId: 'resp_9', seq: 8 });
    expect(ext.session.turns[0].response?.parts).toEqual([{ index: 0, type: 'text', text: 'Once upon' }]);
  });

  it('deactivating saves the chat and closes the connection', async () => {
    activate();
    await ext.handleMessage({ type: 'send', text: 'keep me' });
    await deactivate();
    expect(fake.dispose).toHaveBeenCalled();
    const saved = context.workspaceState.get<{ turns: Array<{ user: string }> }>(SNAPSHOT_KEY);
    expect(saved?.turns.map((t) => t.user)).toEqual(['keep me']);
  });
});

describe('messages', () => {
  it('the webview message parser drops malformed messages', async () => {
    const { parseWebviewMessage } = await import('../src/messages');
    expect(parseWebviewMessage({ type: 'send', text: 'x' })).toEqual({ type: 'send', text: 'x' });
    expect(parseWebviewMessage({ type: 'send', text: 1 })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'eval', code: 'x' })).toBeUndefined();
    expect(parseWebviewMessage(null)).toBeUndefined();
    const all: WebviewMessage['type'][] = ['ready', 'cancel', 'newChat', 'history', 'openSettings', 'reconnect'];
    for (const type of all) expect(parseWebviewMessage({ type })).toEqual({ type });
  });
});

describe('tool/approve (an MCP tool call the daemon runs)', () => {
  const params = {
    responseId: 'resp_1',
    toolCallId: 'c1',
    server: 'fs',
    name: 'write_file',
    tool: 'fs__write_file',
    arguments: { path: '/tmp/x', content: 'hi' },
    annotations: { readOnlyHint: false, destructiveHint: true },
    description: 'Write a file',
  };
  const windowAnswering = (answer: string | undefined) => {
    const asked: unknown[][] = [];
    return {
      asked,
      showWarningMessage: async (...args: unknown[]) => {
        asked.push(args);
        return answer;
      },
    };
  };

  it('shows the call with its three choices and answers with the one picked', async () => {
    const { askApproval } = await import('../src/approve');
    const window = windowAnswering('Allow always');
    expect(await askApproval(window as never, params)).toEqual({ decision: 'allow_always' });
    const [message, options, ...items] = window.asked[0];
    expect(message).toBe('parley: run the MCP tool fs: write_file? [destructiveHint]');
    expect(items).toEqual(['Allow once', 'Allow always', 'Deny']);
    expect((options as { detail: string }).detail).toContain('"content": "hi"');
    expect(await askApproval(windowAnswering('Allow once') as never, params)).toEqual({ decision: 'allow_once' });
  });

  it('a dismissed notification is a deny', async () => {
    const { askApproval } = await import('../src/approve');
    expect(await askApproval(windowAnswering(undefined) as never, params)).toEqual({ decision: 'deny' });
  });
});

describe('in a real VS Code (what the code-server e2e suite found)', () => {
  it('runs in Restricted Mode, where the workspace cannot choose the executable', () => {
    // Without this VS Code disables the extension in a folder not yet trusted, silently.
    expect(manifest.capabilities.untrustedWorkspaces).toMatchObject({ supported: 'limited', restrictedConfigurations: ['parley.executable', 'parley.mcpServers'] });
    expect(manifest.capabilities.untrustedWorkspaces.description).toMatch(/parley\.executable/);
    expect(manifest.capabilities.virtualWorkspaces).toEqual({ supported: true });
  });

  it('reads parley.executable when connecting, not at activation', async () => {
    // VS Code may hand the extension host the user's settings after activation.
    const getConfiguration = mocked(vscode.workspace).getConfiguration;
    const original = getConfiguration.getMockImplementation();
    let value = '';
    getConfiguration.mockImplementation(() => ({ get: () => value }));
    try {
      activate();
      expect(fake.options.executable).toBe('parley');
      value = '/opt/parley/bin/parley';
      resolveView().send({ type: 'ready' });
      await flush();
      expect(mocked(fake.restart)).toHaveBeenCalledWith({ executable: '/opt/parley/bin/parley' });
    } finally {
      getConfiguration.mockImplementation(original);
    }
  });

  it('opens the setting in the Remote tab of a remote window (code-server, SSH), where a machine setting lives', async () => {
    activate();
    const view = resolveView();
    env.remoteName = 'ssh-remote';
    try {
      view.send({ type: 'openSettings' });
      await flush();
      expect(commands.executeCommand).toHaveBeenCalledWith('workbench.action.openRemoteSettings', { query: 'parley.executable' });
      expect(commands.executeCommand).not.toHaveBeenCalledWith('workbench.action.openSettings', 'parley.executable');
    } finally {
      delete env.remoteName;
    }
  });
});
