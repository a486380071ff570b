/**
 * The chat webview's HTML and its Content-Security-Policy. Pure (no `vscode` import), so
 * the headless-Chromium test renders exactly the page the extension serves.
 *
 * The policy allows only this extension's own script (by nonce) and stylesheet, images
 * from its own files or inline `data:` URIs (image attachments), and nothing else: no
 * remote resources, no inline scripts or styles, no frames, no connections.
 */

export interface ChatHtmlOptions {
  /** `webview.cspSource`: the origin the extension's local resources are served from. */
  cspSource: string;
  /** A fresh random value per page load. */
  nonce: string;
  scriptUri: string;
  styleUri: string;
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "connect-src 'none'",
    "frame-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

function attr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function chatHtml(o: ChatHtmlOptions): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(o.styleUri)}">
<title>Parley</title>
</head>
<body>
<div id="app">
  <header class="toolbar">
    <select id="model" title="Model" aria-label="Model"></select>
    <span class="spacer"></span>
    <span id="connection" class="connection" role="status"></span>
    <button id="history" class="icon-button" title="Conversation history" aria-label="Conversation history">History</button>
    <button id="new-chat" class="icon-button" title="New chat" aria-label="New chat">New</button>
  </header>
  <div id="banner" class="banner-area"></div>
  <main id="transcript" class="transcript" aria-live="polite"></main>
  <div id="empty" class="empty">
    <p>Ask any parley model. Conversations, and responses still running, are shared with Neovim and scripts.</p>
  </div>
  <form id="composer" class="composer">
    <textarea id="input" rows="3" placeholder="Ask parley… (Enter to send, Shift+Enter for a new line)" aria-label="Message"></textarea>
    <div class="composer-actions">
      <button id="stop" type="button" class="stop" hidden>Stop</button>
      <button id="send" type="submit" class="send">Send</button>
    </div>
  </form>
</div>
<script nonce="${attr(o.nonce)}" src="${attr(o.scriptUri)}"></script>
</body>
</html>
`;
}

/** A nonce for the page: 32 characters from [A-Za-z0-9]. */
export function makeNonce(random: (n: number) => Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(random(32), (b) => alphabet[b % alphabet.length]).join('');
}
