/**
 * The chat page inside the webview. It keeps a copy of the view model, applies the
 * host's updates (a snapshot, new turns, response events) and renders them: text as
 * markdown with highlighted code and copy buttons, reasoning in a collapsed block,
 * tool calls as cards with their arguments and results, image attachments inline, and
 * errors as banners. Everything that comes from a model is inserted as text or through
 * the sanitizing markdown renderer; nothing is fetched from the network.
 */

import { isSafeExternalUrl, type WebviewMessage } from '../messages';
import type { ConnectionState } from '../client';
import type { ModelInfo } from '../protocol';
import type { ViewUpdate } from '../session';
import { applyEvent, describeError, type PartView, type ResponseView, type TurnView } from '../view';
import { renderMarkdown } from './markdown';

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const post = (m: WebviewMessage) => vscode.postMessage(m);

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const transcript = $<HTMLElement>('transcript');
const empty = $<HTMLElement>('empty');
const bannerArea = $<HTMLElement>('banner');
const input = $<HTMLTextAreaElement>('input');
const composer = $<HTMLFormElement>('composer');
const sendButton = $<HTMLButtonElement>('send');
const stopButton = $<HTMLButtonElement>('stop');
const modelSelect = $<HTMLSelectElement>('model');
const connectionEl = $<HTMLElement>('connection');

const state = {
  turns: [] as TurnView[],
  models: [] as ModelInfo[],
  model: undefined as string | undefined,
  connection: { kind: 'idle' } as ConnectionState,
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- rendering -------------------------------------------------------------------------

const dirty = new Set<string>();
const rebuild = new Set<string>();
let frame = 0;
/** The next render ends scrolled to the bottom (a new turn, another conversation). */
let scrollToEnd = false;

function schedule(turnId: string, full = false): void {
  dirty.add(turnId);
  if (full) rebuild.add(turnId);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush(): void {
  frame = 0;
  // Streaming text follows only a reader at the bottom; what the user just sent always shows.
  const stick = scrollToEnd || nearBottom();
  scrollToEnd = false;
  for (const id of dirty) {
    const turn = state.turns.find((t) => t.id === id);
    if (turn) renderTurn(turn, rebuild.has(id));
  }
  dirty.clear();
  rebuild.clear();
  updateComposer();
  if (stick) transcript.scrollTop = transcript.scrollHeight;
  document.body.dataset.renders = String(Number(document.body.dataset.renders ?? 0) + 1);
}

function nearBottom(): boolean {
  return transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 48;
}

function renderAll(): void {
  transcript.replaceChildren();
  for (const turn of state.turns) schedule(turn.id, true);
  if (!state.turns.length) updateComposer();
  empty.hidden = state.turns.length > 0;
}

function turnElement(turn: TurnView): HTMLElement {
  let section = transcript.querySelector<HTMLElement>(`section.turn[data-turn-id="${CSS.escape(turn.id)}"]`);
  if (section) return section;
  section = el('section', 'turn');
  section.dataset.turnId = turn.id;
  if (turn.user || turn.userAttachments?.length) {
    const user = el('div', 'message user');
    user.append(el('div', 'role', 'You'));
    const body = el('div', 'markdown');
    body.innerHTML = renderMarkdown(turn.user);
    user.append(body);
    if (turn.userAttachments?.length) {
      const list = el('div', 'user-attachments');
      turn.userAttachments.forEach((a) => list.append(attachmentElement(a.mimeType ?? '', a.content, a.url, a.path)));
      user.append(list);
    }
    section.append(user);
  }
  const assistant = el('div', 'message assistant');
  const role = el('div', 'role');
  role.append(el('span', 'model-name'), el('span', 'status'));
  assistant.append(role, el('div', 'parts'), el('div', 'error-slot'), el('div', 'meta'));
  section.append(assistant);
  transcript.append(section);
  empty.hidden = true;
  return section;
}

function renderTurn(turn: TurnView, full: boolean): void {
  const section = turnElement(turn);
  const assistant = section.querySelector<HTMLElement>('.message.assistant')!;
  const r = turn.response;
  assistant.hidden = !r;
  if (!r) return;
  assistant.dataset.responseId = r.responseId;
  assistant.dataset.status = r.status;
  assistant.querySelector('.model-name')!.textContent = r.model || 'parley';
  assistant.querySelector('.status')!.textContent = statusLabel(r);
  const partsEl = assistant.querySelector<HTMLElement>('.parts')!;
  if (full) partsEl.replaceChildren();
  renderParts(partsEl, r);
  renderError(assistant.querySelector<HTMLElement>('.error-slot')!, turn);
  renderMeta(assistant.querySelector<HTMLElement>('.meta')!, r);
}

function statusLabel(r: ResponseView): string {
  switch (r.status) {
    case 'running':
      return r.responseId ? 'answering…' : 'starting…';
    case 'cancelled':
      return 'stopped';
    case 'interrupted':
      return 'interrupted';
    case 'error':
      return 'failed';
    default:
      return '';
  }
}

function signature(part: PartView, results: Map<string, PartView>): string {
  switch (part.type) {
    case 'text':
    case 'reasoning':
      return `${part.type}:${part.text.length}:${part.type === 'reasoning' && part.redacted ? 'r' : ''}`;
    case 'tool_call': {
      const result = part.toolCallId ? results.get(part.toolCallId) : undefined;
      return `call:${part.name.length}:${part.argsText.length}:${result ? result.index : ''}`;
    }
    default:
      return part.type;
  }
}

function renderParts(container: HTMLElement, r: ResponseView): void {
  // Results shown in the card of their call (same toolCallId, earlier in the response).
  const results = new Map<string, PartView>();
  const calls = new Set<string>();
  for (const p of r.parts) {
    if (p.type === 'tool_call' && p.toolCallId) calls.add(p.toolCallId);
    if (p.type === 'tool_result' && p.toolCallId && calls.has(p.toolCallId)) results.set(p.toolCallId, p);
  }
  const running = r.status === 'running';
  let before: Element | null = null;
  for (let i = r.parts.length - 1; i >= 0; i--) {
    const part = r.parts[i];
    const key = String(part.index);
    let node = container.querySelector<HTMLElement>(`:scope > [data-part-index="${key}"]`);
    const sig = signature(part, results) + (running && i === r.parts.length - 1 ? ':live' : '');
    if (!node || node.dataset.partType !== part.type) {
      node?.remove();
      node = createPart(part);
      node.dataset.partIndex = key;
      node.dataset.partType = part.type;
      container.insertBefore(node, before);
    }
    if (node.dataset.sig !== sig) {
      updatePart(node, part, results, running && i === r.parts.length - 1);
      node.dataset.sig = sig;
    }
    before = node;
  }
}

function createPart(part: PartView): HTMLElement {
  switch (part.type) {
    case 'text':
      return el('div', 'part text markdown');
    case 'reasoning': {
      const details = el('details', 'part reasoning');
      details.append(el('summary', undefined, 'Reasoning'), el('div', 'reasoning-body markdown'));
      return details;
    }
    case 'tool_call':
    case 'tool_result': {
      const card = el('div', `part tool-card${part.type === 'tool_result' ? ' standalone-result' : ''}`);
      const header = el('div', 'tool-header');
      header.append(el('span', 'tool-icon', '⚙'), el('span', 'tool-name'), el('span', 'tool-state'));
      card.append(header);
      if (part.type === 'tool_call') {
        const args = el('div', 'tool-section tool-args');
        args.append(el('div', 'tool-label', 'Arguments'), el('pre', 'tool-pre'));
        card.append(args);
      }
      const result = el('div', 'tool-section tool-result');
      result.append(el('div', 'tool-label', 'Result'), el('pre', 'tool-pre'));
      result.hidden = true;
      card.append(result);
      return card;
    }
    case 'attachment':
      return el('div', 'part attachment');
  }
}

function prettyArgs(text: string): string {
  if (!text.trim()) return '{}';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text; // still streaming, or cut off
  }
}

function fillResult(card: HTMLElement, result: Extract<PartView, { type: 'tool_result' }>): void {
  const section = card.querySelector<HTMLElement>('.tool-result')!;
  section.hidden = false;
  section.querySelector('.tool-label')!.textContent = result.exception ? 'Failed' : result.serverExecuted ? 'Result (run by the provider)' : 'Result';
  const pre = section.querySelector('pre')!;
  pre.textContent = result.exception ? `${result.exception}${result.output ? `\n\n${result.output}` : ''}` : result.output;
  card.classList.toggle('failed', Boolean(result.exception));
}

function updatePart(node: HTMLElement, part: PartView, results: Map<string, PartView>, live: boolean): void {
  switch (part.type) {
    case 'text':
      node.innerHTML = renderMarkdown(part.text);
      break;
    case 'reasoning': {
      node.querySelector('summary')!.textContent = live ? 'Thinking…' : part.redacted ? 'Reasoning (redacted)' : 'Reasoning';
      const body = node.querySelector<HTMLElement>('.reasoning-body')!;
      if (part.redacted) body.textContent = 'The provider hid this reasoning.';
      else body.innerHTML = renderMarkdown(part.text);
      break;
    }
    case 'tool_call': {
      if (part.toolCallId) node.dataset.toolCallId = part.toolCallId;
      node.querySelector('.tool-name')!.textContent = part.name || 'tool';
      node.querySelector('.tool-args pre')!.textContent = prettyArgs(part.argsText);
      const result = part.toolCallId ? results.get(part.toolCallId) : undefined;
      node.querySelector('.tool-state')!.textContent = result ? (result.type === 'tool_result' && result.exception ? 'failed' : 'done') : live ? 'calling…' : 'called';
      if (result && result.type === 'tool_result') fillResult(node, result);
      break;
    }
    case 'tool_result': {
      if (part.toolCallId) node.dataset.toolCallId = part.toolCallId;
      const merged = part.toolCallId && results.get(part.toolCallId) === part;
      node.hidden = Boolean(merged); // shown in its call's card
      node.querySelector('.tool-name')!.textContent = part.name || 'tool';
      node.querySelector('.tool-state')!.textContent = part.exception ? 'failed' : 'result';
      fillResult(node, part);
      break;
    }
    case 'attachment': {
      const a = part.attachment;
      node.replaceChildren(attachmentElement(a.mimeType ?? '', a.content, a.url, a.path));
      break;
    }
  }
}

const IMAGE_TYPES = /^image\/(png|jpeg|gif|webp|bmp|avif)$/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function attachmentElement(mimeType: string, content?: string | null, url?: string | null, path?: string | null): HTMLElement {
  const figure = el('figure', 'attachment-item');
  const clean = content?.replace(/\s+/g, '') ?? '';
  if (content && IMAGE_TYPES.test(mimeType) && BASE64.test(clean)) {
    const img = el('img');
    img.alt = `attachment (${mimeType})`;
    img.src = `data:${mimeType.toLowerCase()};base64,${clean}`;
    figure.append(img, el('figcaption', undefined, mimeType));
    return figure;
  }
  const caption = el('figcaption');
  caption.append(el('span', 'attachment-type', mimeType || 'attachment'));
  if (url && isSafeExternalUrl(url)) {
    // Remote files are never loaded into the page; a click opens them outside the editor.
    const link = el('a', 'external', url);
    link.href = url;
    caption.append(' ', link);
  } else if (url) {
    caption.append(' ', el('code', undefined, url));
  } else if (path) {
    caption.append(' ', el('code', undefined, path));
  } else if (content) {
    caption.append(` ${formatBytes(Math.floor((clean.length * 3) / 4))}`);
  }
  figure.append(caption);
  figure.classList.add('file');
  return figure;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function renderError(slot: HTMLElement, turn: TurnView): void {
  const r = turn.response!;
  const key = r.error ? `${r.error.code}:${r.error.message}:${r.status}` : '';
  if (slot.dataset.key === key) return;
  slot.dataset.key = key;
  slot.replaceChildren();
  if (!r.error) return;
  const d = describeError(r.error);
  const banner = el('div', 'banner error');
  banner.setAttribute('role', 'alert');
  banner.dataset.code = r.error.code;
  banner.append(el('div', 'banner-title', d.title), el('div', 'banner-message', d.message), el('div', 'banner-hint', d.hint));
  if (d.retryHelps && turn.user) {
    const retry = el('button', 'retry', 'Retry');
    retry.type = 'button';
    retry.addEventListener('click', () => post({ type: 'retry', turnId: turn.id }));
    banner.append(retry);
  }
  slot.append(banner);
}

function renderMeta(meta: HTMLElement, r: ResponseView): void {
  const bits: string[] = [];
  if (r.status === 'cancelled') bits.push('Stopped: the partial answer is kept.');
  if (r.status === 'interrupted' && !r.error) bits.push('Interrupted: the daemon stopped while this ran.');
  if (r.usage && (r.usage.input != null || r.usage.output != null)) {
    bits.push(`${r.usage.input ?? '?'} tokens in, ${r.usage.output ?? '?'} out`);
  }
  meta.textContent = bits.join(' · ');
}

// -- chrome: composer, models, connection, notices -------------------------------------

function updateComposer(): void {
  const running = state.turns.some((t) => t.response?.status === 'running');
  stopButton.hidden = !running;
  sendButton.disabled = running;
  document.body.classList.toggle('running', running);
}

function renderModels(): void {
  modelSelect.replaceChildren();
  const fallback = state.models.find((m) => m.default);
  const def = el('option', undefined, fallback ? `Default (${fallback.id})` : 'Default model');
  def.value = '';
  modelSelect.append(def);
  for (const m of state.models) {
    const option = el('option', undefined, m.id);
    option.value = m.id;
    option.title = `${m.provider}${m.aliases?.length ? ` · ${m.aliases.join(', ')}` : ''}`;
    modelSelect.append(option);
  }
  if (state.model && !state.models.some((m) => m.id === state.model)) {
    const option = el('option', undefined, `${state.model} (not listed)`);
    option.value = state.model;
    modelSelect.append(option);
  }
  modelSelect.value = state.model ?? '';
}

function renderConnection(): void {
  const s = state.connection;
  connectionEl.dataset.state = s.kind;
  connectionEl.textContent =
    s.kind === 'connected' ? 'connected' : s.kind === 'missing' ? 'not installed' : s.kind === 'reconnecting' ? 'reconnecting…' : s.kind === 'connecting' ? 'connecting…' : 'offline';
  connectionEl.title = s.kind === 'connected' ? `parleyd ${s.serverVersion}` : s.kind === 'reconnecting' ? s.reason : '';
  bannerArea.querySelector('.connection-banner')?.remove();
  if (s.kind === 'missing' || s.kind === 'reconnecting') {
    const banner = el('div', `banner connection-banner ${s.kind === 'missing' ? 'error' : 'warning'}`);
    banner.setAttribute('role', 'alert');
    if (s.kind === 'missing') {
      banner.append(el('div', 'banner-title', 'parley is not installed'), el('div', 'banner-message', s.message));
      const settings = el('button', undefined, 'Open settings');
      settings.type = 'button';
      settings.addEventListener('click', () => post({ type: 'openSettings' }));
      const retry = el('button', undefined, 'Try again');
      retry.type = 'button';
      retry.addEventListener('click', () => post({ type: 'reconnect' }));
      banner.append(settings, retry);
    } else {
      banner.append(
        el('div', 'banner-title', 'Reconnecting to the parley daemon…'),
        el('div', 'banner-message', s.reason),
        el('div', 'banner-hint', 'Running responses resume where they stopped.'),
      );
    }
    bannerArea.prepend(banner);
  }
}

function showNotice(level: 'info' | 'error', message: string): void {
  const banner = el('div', `banner notice ${level}`);
  banner.setAttribute('role', level === 'error' ? 'alert' : 'status');
  banner.append(el('div', 'banner-message', message));
  const close = el('button', 'dismiss', '×');
  close.type = 'button';
  close.title = 'Dismiss';
  close.addEventListener('click', () => banner.remove());
  banner.append(close);
  bannerArea.append(banner);
  setTimeout(() => banner.remove(), 15000);
}

// -- host messages ---------------------------------------------------------------------

function onUpdate(u: ViewUpdate): void {
  switch (u.type) {
    case 'snapshot':
      scrollToEnd = true;
      state.turns = u.snapshot.turns;
      state.models = u.models;
      state.model = u.model;
      state.connection = u.connection;
      renderModels();
      renderConnection();
      renderAll();
      break;
    case 'turn':
      scrollToEnd = true;
      state.turns.push(u.turn);
      schedule(u.turn.id, true);
      break;
    case 'event': {
      const turn = state.turns.find((t) => t.id === u.turnId);
      if (turn?.response && applyEvent(turn.response, u.event)) schedule(turn.id);
      break;
    }
    case 'response': {
      const turn = state.turns.find((t) => t.id === u.turnId);
      if (turn) {
        turn.response = u.response;
        schedule(turn.id, true);
      }
      break;
    }
    case 'models':
      state.models = u.models;
      state.model = u.model;
      renderModels();
      break;
    case 'connection':
      state.connection = u.state;
      renderConnection();
      break;
    case 'notice':
      showNotice(u.level, u.message);
      break;
  }
}

window.addEventListener('message', (e: MessageEvent) => {
  const data = e.data as ViewUpdate | { type: 'focusInput' } | undefined;
  if (!data || typeof data !== 'object') return;
  if (data.type === 'focusInput') {
    input.focus();
    return;
  }
  onUpdate(data as ViewUpdate);
});

// -- user actions ----------------------------------------------------------------------

function submit(): void {
  const text = input.value;
  if (!text.trim() || sendButton.disabled) return;
  post({ type: 'send', text });
  input.value = '';
}

composer.addEventListener('submit', (e) => {
  e.preventDefault();
  submit();
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submit();
  }
});
stopButton.addEventListener('click', () => post({ type: 'cancel' }));
$('new-chat').addEventListener('click', () => post({ type: 'newChat' }));
$('history').addEventListener('click', () => post({ type: 'history' }));
modelSelect.addEventListener('change', () => post({ type: 'setModel', model: modelSelect.value }));

document.addEventListener('click', (e) => {
  const target = e.target as HTMLElement | null;
  const copy = target?.closest<HTMLButtonElement>('button.copy');
  if (copy) {
    const code = copy.closest('.code-block')?.querySelector('code');
    post({ type: 'copy', text: code?.textContent ?? '' });
    copy.textContent = 'Copied';
    setTimeout(() => (copy.textContent = 'Copy'), 1500);
    return;
  }
  const link = target?.closest<HTMLAnchorElement>('a[href]');
  if (link) {
    e.preventDefault(); // never navigate the webview
    post({ type: 'openExternal', url: link.getAttribute('href') ?? '' });
  }
});

post({ type: 'ready' });
