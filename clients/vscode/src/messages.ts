/** Messages from the webview to the extension host. (Host → webview: `ViewUpdate` in session.ts.) */
export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'send'; text: string }
  | { type: 'cancel' }
  | { type: 'retry'; turnId: string }
  | { type: 'newChat' }
  | { type: 'history' }
  | { type: 'setModel'; model: string }
  | { type: 'copy'; text: string }
  | { type: 'openExternal'; url: string }
  | { type: 'openSettings' }
  | { type: 'reconnect' };

const TYPES = new Set(['ready', 'send', 'cancel', 'retry', 'newChat', 'history', 'setModel', 'copy', 'openExternal', 'openSettings', 'reconnect']);

/** The webview is not trusted more than it must be: check a message's shape before acting on it. */
export function parseWebviewMessage(value: unknown): WebviewMessage | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const m = value as Record<string, unknown>;
  if (typeof m.type !== 'string' || !TYPES.has(m.type)) return undefined;
  switch (m.type) {
    case 'send':
    case 'copy':
      return typeof m.text === 'string' ? ({ type: m.type, text: m.text } as WebviewMessage) : undefined;
    case 'retry':
      return typeof m.turnId === 'string' ? { type: 'retry', turnId: m.turnId } : undefined;
    case 'setModel':
      return typeof m.model === 'string' ? { type: 'setModel', model: m.model } : undefined;
    case 'openExternal':
      return typeof m.url === 'string' ? { type: 'openExternal', url: m.url } : undefined;
    default:
      return { type: m.type } as WebviewMessage;
  }
}

/** Only web links leave the editor; anything else (javascript:, file:, command:) is refused. */
export function isSafeExternalUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' || u.protocol === 'mailto:';
  } catch {
    return false;
  }
}
