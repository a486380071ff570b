/** The chat panel: a webview view in parley's activity-bar container. */

import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import { parseWebviewMessage, type WebviewMessage } from './messages';
import type { ChatSession, ViewUpdate } from './session';
import { chatHtml, makeNonce } from './webviewHtml';

export const VIEW_ID = 'parley.chat';

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private ready = false;
  private readonly subscription: { dispose(): void };

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly session: ChatSession,
    private readonly onMessage: (message: WebviewMessage) => void | Promise<void>,
  ) {
    this.subscription = session.onUpdate((u) => this.post(u));
  }

  get visible(): boolean {
    return Boolean(this.view?.visible);
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    view.webview.options = { enableScripts: true, enableCommandUris: false, localResourceRoots: [dist, media] };
    view.webview.html = chatHtml({
      cspSource: view.webview.cspSource,
      nonce: makeNonce((n) => crypto.randomBytes(n)),
      scriptUri: view.webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString(),
      styleUri: view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css')).toString(),
    });
    view.webview.onDidReceiveMessage((raw) => {
      const message = parseWebviewMessage(raw);
      if (!message) return;
      if (message.type === 'ready') {
        this.ready = true;
        void view.webview.postMessage(this.session.fullUpdate());
      }
      void this.onMessage(message);
    });
    view.onDidDispose(() => {
      if (this.view === view) {
        this.view = undefined;
        this.ready = false;
      }
    });
  }

  private post(update: ViewUpdate | { type: 'focusInput' }): void {
    if (this.view && this.ready) void this.view.webview.postMessage(update);
  }

  focusInput(): void {
    this.post({ type: 'focusInput' });
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
