/**
 * The extension's glue: it reads the settings, owns the client (a `parley stdio` child)
 * and the chat session, registers the chat view, the commands and the status bar item,
 * and routes the webview's messages. Everything it does with the daemon goes through
 * ParleyClient and ChatSession, which are tested against the real daemon.
 */

import * as vscode from 'vscode';
import { askApproval } from './approve';
import { ChatViewProvider, VIEW_ID } from './chatView';
import { ParleyClient, toParleyError, type ClientOptions, type ConnectionState, type Logger } from './client';
import { isSafeExternalUrl, type WebviewMessage } from './messages';
import { selectionPrompt } from './prompts';
import { ChatSession, SNAPSHOT_KEY } from './session';
import type { ConversationSummary } from './protocol';

export const COMMANDS = {
  newChat: 'parley.newChat',
  askSelection: 'parley.askSelection',
  cancel: 'parley.cancel',
  pickModel: 'parley.pickModel',
  openConversation: 'parley.openConversation',
  reconnect: 'parley.reconnect',
  showStatus: 'parley.showStatus',
  showLog: 'parley.showLog',
} as const;

export interface ExtensionDeps {
  /** Tests replace the client. */
  createClient?: (options: ClientOptions) => ParleyClient;
}

export interface ParleyExtension {
  client: ParleyClient;
  session: ChatSession;
  view: ChatViewProvider;
  statusBar: vscode.StatusBarItem;
  /** Connects if not connected yet (the first command or view does this). */
  ensureStarted(): Promise<void>;
  handleMessage(message: WebviewMessage): Promise<void>;
}

let current: ParleyExtension | undefined;

function executable(): string {
  return vscode.workspace.getConfiguration('parley').get<string>('executable') || 'parley';
}

/**
 * Opens the `parley.executable` setting where it applies. Its scope is machine-overridable,
 * so a remote window (code-server, Remote - SSH, WSL…), where this extension runs on the
 * remote side, lists it under its Remote tab only: the User tab would find no setting.
 */
async function openExecutableSetting(): Promise<void> {
  if (vscode.env.remoteName) {
    try {
      await vscode.commands.executeCommand('workbench.action.openRemoteSettings', { query: 'parley.executable' });
      return;
    } catch {
      // no such command here: the user's settings then
    }
  }
  await vscode.commands.executeCommand('workbench.action.openSettings', 'parley.executable');
}

function makeLogger(channel: vscode.LogOutputChannel | undefined): Logger {
  return {
    info: (m) => channel?.info(m),
    warn: (m) => channel?.warn(m),
    error: (m) => channel?.error(m),
  };
}

export function activate(context: vscode.ExtensionContext): ParleyExtension {
  return activateWith(context, {});
}

export function activateWith(context: vscode.ExtensionContext, deps: ExtensionDeps): ParleyExtension {
  const channel = vscode.window.createOutputChannel('Parley', { log: true }) as vscode.LogOutputChannel | undefined;
  if (channel) context.subscriptions.push(channel);
  const version = (context.extension?.packageJSON as { version?: string } | undefined)?.version;
  const options: ClientOptions = {
    executable: executable(),
    clientInfo: { name: 'parley-vscode', ...(version ? { version } : {}) },
    logger: makeLogger(channel),
  };
  const client = deps.createClient ? deps.createClient(options) : new ParleyClient(options);
  channel?.info(`activated (parley.executable: ${options.executable}; trusted: ${vscode.workspace.isTrusted}; remote: ${vscode.env.remoteName ?? 'none'})`);
  client.approve = (params) => askApproval(vscode.window, params);
  const mcpServers = () => vscode.workspace.getConfiguration('parley').get<string[]>('mcpServers') ?? [];
  const session = new ChatSession(client, context.workspaceState, { mcpServers });

  let restoring: Promise<void> | undefined;
  const ensureStarted = async (): Promise<void> => {
    const kind = client.state.kind;
    // The setting is read when connecting, not at activation: VS Code may deliver the
    // user's settings to the extension host after activation (code-server does, on a
    // fresh profile), and a change while idle restarts nothing.
    if (kind === 'idle' || kind === 'missing' || kind === 'stopped') client.restart({ executable: executable() }).catch(() => {});
    await client.ready();
    // The first connection brings back what the panel showed before a reload.
    restoring ??= session.restore().catch((e) => channel?.warn(`restore: ${String(e)}`));
    await restoring;
  };

  // -- the status bar ---------------------------------------------------------------------
  const statusBar = vscode.window.createStatusBarItem('parley.status', vscode.StatusBarAlignment.Left, 100);
  statusBar.name = 'Parley';
  statusBar.command = COMMANDS.showStatus;
  const showState = (state: ConnectionState) => {
    const running = session.running.length;
    switch (state.kind) {
      case 'connected':
        statusBar.text = running ? '$(loading~spin) parley' : '$(comment-discussion) parley';
        statusBar.tooltip = `parley: connected to parleyd ${state.serverVersion}${running ? ' · a response is running' : ''}`;
        statusBar.backgroundColor = undefined;
        break;
      case 'connecting':
        statusBar.text = '$(sync~spin) parley';
        statusBar.tooltip = 'parley: connecting to the daemon…';
        statusBar.backgroundColor = undefined;
        break;
      case 'reconnecting':
        statusBar.text = '$(sync~spin) parley: reconnecting';
        statusBar.tooltip = `parley: ${state.reason}; reconnecting`;
        statusBar.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
        break;
      case 'missing':
        statusBar.text = '$(error) parley: not installed';
        statusBar.tooltip = state.message;
        statusBar.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        break;
      default:
        statusBar.text = '$(comment-discussion) parley';
        statusBar.tooltip = 'parley: not connected';
        statusBar.backgroundColor = undefined;
    }
    statusBar.show();
  };
  showState(client.state);
  context.subscriptions.push(
    statusBar,
    client.onState((state) => {
      showState(state);
      if (state.kind === 'missing') {
        void vscode.window.showErrorMessage(state.message, 'Open Settings', 'Retry').then((choice) => {
          if (choice === 'Open Settings') void openExecutableSetting();
          if (choice === 'Retry') void vscode.commands.executeCommand(COMMANDS.reconnect);
        });
      }
    }),
    session.onUpdate((u) => {
      if (u.type === 'event' || u.type === 'response' || u.type === 'turn' || u.type === 'snapshot') showState(client.state);
    }),
  );

  // -- actions ----------------------------------------------------------------------------
  const notify = (message: string) => {
    void vscode.window.showErrorMessage(`parley: ${message}`);
  };

  const send = async (text: string) => {
    try {
      await ensureStarted();
    } catch (e) {
      notify(toParleyError(e).message);
      return;
    }
    try {
      await session.send(text);
    } catch (e) {
      notify(toParleyError(e).message);
    }
  };

  const focusView = async () => {
    await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
  };

  const pickModel = async () => {
    try {
      await ensureStarted();
      const models = await session.refreshModels();
      const chosen = session.model;
      type Item = vscode.QuickPickItem & { model: string };
      const fallback = models.find((m) => m.default);
      const items: Item[] = [
        { label: 'Default model', description: fallback ? fallback.id : '', model: '', picked: !chosen },
        ...models.map((m) => ({
          label: m.id,
          description: [m.provider, m.default ? 'default' : '', ...(m.aliases ?? [])].filter(Boolean).join(' · '),
          detail: capabilityText(m.capabilities),
          model: m.id,
          picked: m.id === chosen,
        })),
      ];
      const picked = await vscode.window.showQuickPick(items, { title: 'Parley: Pick Model', placeHolder: 'Model for new messages' });
      if (picked) await session.setModel(picked.model);
    } catch (e) {
      notify(toParleyError(e).message);
    }
  };

  const openConversation = async () => {
    try {
      await ensureStarted();
    } catch (e) {
      notify(toParleyError(e).message);
      return;
    }
    type Item = vscode.QuickPickItem & { id: string };
    const toItems = (list: ConversationSummary[]): Item[] =>
      list.map((c) => ({
        label: c.title || '(untitled)',
        description: `${c.model} · ${c.responseCount} ${c.responseCount === 1 ? 'response' : 'responses'}`,
        detail: new Date(c.updatedAt).toLocaleString(),
        id: c.id,
        alwaysShow: true, // the daemon's full-text search decided; don't filter titles again
      }));
    const quickPick = vscode.window.createQuickPick<Item>();
    quickPick.title = 'Parley: Open Conversation';
    quickPick.placeholder = 'Search conversations (full text)';
    quickPick.matchOnDescription = false;
    quickPick.busy = true;
    let generation = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = (query: string) => {
      const mine = ++generation;
      quickPick.busy = true;
      session.listConversations(query).then(
        (list) => {
          if (mine !== generation) return;
          quickPick.items = toItems(list);
          quickPick.busy = false;
        },
        (e) => {
          if (mine !== generation) return;
          quickPick.busy = false;
          quickPick.items = [];
          notify(toParleyError(e).message);
        },
      );
    };
    quickPick.onDidChangeValue((value) => {
      clearTimeout(timer);
      timer = setTimeout(() => load(value), 200);
    });
    quickPick.onDidAccept(async () => {
      const item = quickPick.selectedItems[0];
      quickPick.hide();
      if (!item) return;
      try {
        await focusView();
        await session.resume(item.id);
      } catch (e) {
        notify(toParleyError(e).message);
      }
    });
    quickPick.onDidHide(() => {
      clearTimeout(timer);
      quickPick.dispose();
    });
    quickPick.show();
    load('');
  };

  const askSelection = async () => {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.selection.isEmpty) {
      void vscode.window.showInformationMessage('parley: select the code you want to ask about first.');
      return;
    }
    const doc = editor.document;
    const sel = editor.selection;
    const question = await vscode.window.showInputBox({
      title: 'Parley: Ask About Selection',
      prompt: 'What do you want to know about the selected code?',
      placeHolder: 'Explain this code',
    });
    if (question === undefined) return;
    const endLine = sel.end.character === 0 && sel.end.line > sel.start.line ? sel.end.line - 1 : sel.end.line;
    const text = selectionPrompt(question.trim() || 'Explain this code.', {
      fileName: vscode.workspace.asRelativePath(doc.uri, false),
      languageId: doc.languageId,
      text: doc.getText(sel),
      startLine: sel.start.line + 1,
      endLine: endLine + 1,
    });
    await focusView();
    await send(text);
  };

  const handleMessage = async (message: WebviewMessage): Promise<void> => {
    switch (message.type) {
      case 'ready':
        ensureStarted().catch(() => {}); // the state shows in the view
        return;
      case 'send':
        return send(message.text);
      case 'cancel':
        return session.cancel();
      case 'retry':
        try {
          await ensureStarted();
          await session.retry(message.turnId);
        } catch (e) {
          notify(toParleyError(e).message);
        }
        return;
      case 'newChat':
        session.newChat();
        return;
      case 'history':
        return openConversation();
      case 'setModel':
        return session.setModel(message.model);
      case 'copy':
        await vscode.env.clipboard.writeText(message.text);
        return;
      case 'openExternal':
        if (isSafeExternalUrl(message.url)) await vscode.env.openExternal(vscode.Uri.parse(message.url));
        return;
      case 'openSettings':
        await openExecutableSetting();
        return;
      case 'reconnect':
        await vscode.commands.executeCommand(COMMANDS.reconnect);
        return;
    }
  };

  const view = new ChatViewProvider(context.extensionUri, session, handleMessage);
  context.subscriptions.push(
    view,
    vscode.window.registerWebviewViewProvider(VIEW_ID, view, { webviewOptions: { retainContextWhenHidden: false } }),
    vscode.commands.registerCommand(COMMANDS.newChat, async () => {
      session.newChat();
      await focusView();
      view.focusInput();
    }),
    vscode.commands.registerCommand(COMMANDS.askSelection, askSelection),
    vscode.commands.registerCommand(COMMANDS.cancel, () => session.cancel()),
    vscode.commands.registerCommand(COMMANDS.pickModel, pickModel),
    vscode.commands.registerCommand(COMMANDS.openConversation, openConversation),
    vscode.commands.registerCommand(COMMANDS.reconnect, async () => {
      await client.restart({ executable: executable() }).catch((e) => notify(toParleyError(e).message));
    }),
    vscode.commands.registerCommand(COMMANDS.showStatus, async () => {
      const state = client.state;
      if (state.kind === 'missing') {
        const choice = await vscode.window.showErrorMessage(state.message, 'Open Settings', 'Retry');
        if (choice === 'Open Settings') await openExecutableSetting();
        if (choice === 'Retry') await vscode.commands.executeCommand(COMMANDS.reconnect);
        return;
      }
      await focusView();
      ensureStarted().catch(() => {});
    }),
    vscode.commands.registerCommand(COMMANDS.showLog, () => channel?.show()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('parley.executable')) return;
      channel?.info(`parley.executable is now ${executable()}`);
      if (client.state.kind !== 'idle') client.restart({ executable: executable() }).catch(() => {});
    }),
    { dispose: () => session.dispose() },
    { dispose: () => client.dispose() },
  );

  // A reloaded window picks up the response that was running when it closed.
  const saved = context.workspaceState.get<{ turns?: Array<{ response?: { status?: string } }> }>(SNAPSHOT_KEY);
  if (saved?.turns?.some((t) => t.response?.status === 'running')) ensureStarted().catch(() => {});

  current = { client, session, view, statusBar, ensureStarted, handleMessage };
  return current;
}

function capabilityText(c: { tools?: boolean; reasoning?: boolean; attachments?: string[] } | undefined): string {
  if (!c) return '';
  const bits: string[] = [];
  if (c.tools) bits.push('tools');
  if (c.reasoning) bits.push('reasoning');
  if (c.attachments?.length) bits.push(`attachments: ${c.attachments.join(', ')}`);
  return bits.join(' · ');
}

export async function deactivate(): Promise<void> {
  const ext = current;
  current = undefined;
  if (!ext) return;
  await ext.session.save().catch(() => {});
  ext.client.dispose(); // responses keep running in the daemon
}

