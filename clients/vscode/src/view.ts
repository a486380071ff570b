/**
 * The chat's view model: plain JSON shared by the extension host (which keeps it and
 * persists it) and the webview (which renders it). `applyEvent` rebuilds a response's
 * parts from its `response/event`s following PROTOCOL.md 6.3; `responseFromRecord`
 * builds the same view from a stored `ResponseRecord`. Nothing here imports `vscode`
 * or Node, so the webview bundles it too.
 */

import { lastSeqOf, type Attachment, type ErrorInfo, type Message, type Part, type ResponseEvent, type ResponseRecord, type ResponseStatus, type Usage } from './protocol';

export type PartView =
  | { index: number; type: 'text'; text: string }
  | { index: number; type: 'reasoning'; text: string; redacted?: boolean }
  | { index: number; type: 'tool_call'; toolCallId?: string; name: string; argsText: string }
  | {
      index: number;
      type: 'tool_result';
      toolCallId?: string;
      name: string;
      output: string;
      exception?: string;
      serverExecuted?: boolean;
    }
  | { index: number; type: 'attachment'; attachment: Attachment };

export interface ResponseView {
  /** Empty when the request that should have started the response failed. */
  responseId: string;
  model?: string;
  status: ResponseStatus;
  parts: PartView[];
  /** The last `seq` applied (a merged event's `seqEnd`): a reattach subscribes from here. */
  lastSeq: number;
  error?: ErrorInfo;
  usage?: Usage;
}

export interface TurnView {
  /** Stable id of the turn in this session (the webview keys its DOM on it). */
  id: string;
  /** The user's message as text (markdown), empty for a conversation that starts otherwise. */
  user: string;
  /** Attachments of the user message, listed by the view. */
  userAttachments?: Attachment[];
  response?: ResponseView;
}

export interface SessionSnapshot {
  conversationId?: string;
  title?: string;
  turns: TurnView[];
}

export function newResponse(responseId: string, model?: string): ResponseView {
  return { responseId, model, status: 'running', parts: [], lastSeq: 0 };
}

function nextIndex(view: ResponseView): number {
  return view.parts.length ? view.parts[view.parts.length - 1].index + 1 : 0;
}

function partAt(view: ResponseView, index: number): PartView | undefined {
  for (let i = view.parts.length - 1; i >= 0; i--) {
    if (view.parts[i].index === index) return view.parts[i];
    if (view.parts[i].index < index) return undefined;
  }
  return undefined;
}

function insert(view: ResponseView, part: PartView): PartView {
  const parts = view.parts;
  let i = parts.length;
  while (i > 0 && parts[i - 1].index > part.index) i--;
  parts.splice(i, 0, part);
  return part;
}

/**
 * Applies one event to the view, in place. Returns false for an event that was already
 * applied (its `seq`, or `seqEnd` for a merged delta, is not past `lastSeq`). The caller
 * checks ordering; this only refuses duplicates.
 */
export function applyEvent(view: ResponseView, event: ResponseEvent): boolean {
  const end = lastSeqOf(event); // a merged delta stands for seq..seqEnd, applied once
  if (end <= view.lastSeq) return false;
  view.lastSeq = end;
  switch (event.type) {
    case 'text':
    case 'reasoning': {
      const last = view.parts[view.parts.length - 1];
      let part: PartView | undefined =
        event.partIndex !== undefined ? partAt(view, event.partIndex) : last && last.type === event.type ? last : undefined;
      if (!part || part.type !== event.type) {
        const index = event.partIndex ?? nextIndex(view);
        part = insert(view, event.type === 'text' ? { index, type: 'text', text: '' } : { index, type: 'reasoning', text: '' });
      }
      if (part.type === 'text') part.text += event.chunk;
      else if (part.type === 'reasoning') {
        part.text += event.chunk;
        if (event.type === 'reasoning' && event.redacted) part.redacted = true;
      }
      break;
    }
    case 'tool_call_name':
    case 'tool_call_args': {
      let part: PartView | undefined =
        event.partIndex !== undefined
          ? partAt(view, event.partIndex)
          : [...view.parts].reverse().find((p) => p.type === 'tool_call' && p.toolCallId === event.toolCallId);
      if (!part || part.type !== 'tool_call') {
        part = insert(view, {
          index: event.partIndex ?? nextIndex(view),
          type: 'tool_call',
          toolCallId: event.toolCallId,
          name: '',
          argsText: '',
        });
      }
      if (part.type === 'tool_call') {
        if (event.type === 'tool_call_name') part.name += event.chunk;
        else part.argsText += event.chunk;
      }
      break;
    }
    case 'tool_result':
      insert(view, {
        index: event.partIndex ?? nextIndex(view),
        type: 'tool_result',
        toolCallId: event.toolCallId,
        name: event.name,
        output: event.output,
        ...(event.exception ? { exception: event.exception } : {}),
        ...(event.serverExecuted ? { serverExecuted: true } : {}),
      });
      break;
    case 'attachment': {
      const attachment: Attachment = { mimeType: event.mimeType };
      if (event.content != null) attachment.content = event.content;
      if (event.url != null) attachment.url = event.url;
      insert(view, { index: event.partIndex ?? nextIndex(view), type: 'attachment', attachment });
      break;
    }
    case 'usage':
      view.usage = { input: event.input ?? null, output: event.output ?? null, ...(event.details ? { details: event.details } : {}) };
      break;
    case 'error':
      view.error = {
        code: event.code,
        message: event.message,
        retryable: event.retryable ?? false,
        retryAfter: event.retryAfter ?? null,
      };
      break;
    case 'done':
      // The record of a response stopped by the daemon says `interrupted`; its `done` says `error`.
      view.status = event.status === 'error' && view.error?.code === 'interrupted' ? 'interrupted' : event.status;
      break;
  }
  return true;
}

/** A stored part as the view shows it. */
export function partView(part: Part, index: number): PartView | undefined {
  switch (part.type) {
    case 'text':
      return { index, type: 'text', text: part.text };
    case 'reasoning':
      return { index, type: 'reasoning', text: part.text, ...(part.redacted ? { redacted: true } : {}) };
    case 'tool_call': {
      const partial = part.providerMetadata?.parley?.partialArguments;
      const argsText = typeof partial === 'string' ? partial : JSON.stringify(part.arguments ?? {});
      return { index, type: 'tool_call', toolCallId: part.toolCallId ?? undefined, name: part.name, argsText };
    }
    case 'tool_result':
      return {
        index,
        type: 'tool_result',
        toolCallId: part.toolCallId ?? undefined,
        name: part.name,
        output: part.output,
        ...(part.exception ? { exception: part.exception } : {}),
        ...(part.serverExecuted ? { serverExecuted: true } : {}),
      };
    case 'attachment':
      return { index, type: 'attachment', attachment: part.attachment };
    default:
      return undefined; // a part type from a later protocol version
  }
}

export function partsFromMessages(messages: Message[]): PartView[] {
  const parts: PartView[] = [];
  for (const message of messages) {
    for (const part of message.parts) {
      const view = partView(part, parts.length);
      if (view) parts.push(view);
    }
  }
  return parts;
}

/** A response as stored: used when it finished (or crashed) while this client was away. */
export function responseFromRecord(record: ResponseRecord, lastSeq = 0): ResponseView {
  const view: ResponseView = {
    responseId: record.id,
    model: record.model,
    status: record.status,
    parts: partsFromMessages(record.messages),
    lastSeq,
  };
  if (record.error) view.error = record.error;
  if (record.usage) view.usage = record.usage;
  return view;
}

export function textOf(message: Message): string {
  return message.parts
    .filter((p): p is Extract<Part, { type: 'text' }> => p.type === 'text')
    .map((p) => p.text)
    .join('\n\n');
}

/**
 * A stored chain of messages (a conversation's, or a response's input) as turns: each
 * user message opens a turn, and the assistant and tool messages after it are its answer.
 */
export function turnsFromMessages(messages: Message[], newId: () => string): TurnView[] {
  const turns: TurnView[] = [];
  for (const message of messages) {
    if (message.role === 'system') continue;
    if (message.role === 'user') {
      const attachments = message.parts.flatMap((p) => (p.type === 'attachment' ? [p.attachment] : []));
      turns.push({ id: newId(), user: textOf(message), ...(attachments.length ? { userAttachments: attachments } : {}) });
      continue;
    }
    let turn = turns[turns.length - 1];
    if (!turn) {
      turn = { id: newId(), user: '' };
      turns.push(turn);
    }
    const response = (turn.response ??= { responseId: '', status: 'completed', parts: [], lastSeq: 0 });
    for (const part of message.parts) {
      const view = partView(part, response.parts.length);
      if (view) response.parts.push(view);
    }
  }
  return turns;
}

const ERROR_TITLES: Record<string, string> = {
  auth: 'The provider refused the credentials',
  rate_limited: 'Rate limited',
  overloaded: 'The provider is overloaded',
  context_length: 'The conversation is too long for this model',
  bad_request: 'The provider rejected the request',
  network: 'The provider could not be reached',
  timeout: 'The provider stopped answering',
  provider_error: 'The provider reported an error',
  model_error: 'The model failed',
  internal: 'The parley daemon hit a bug',
  interrupted: 'The daemon stopped while the response was running',
  // JSON-RPC error kinds, for requests that failed before a response started.
  unknown_model: 'Unknown model',
  unknown_conversation: 'Unknown conversation',
  unknown_response: 'Unknown response',
  invalid_params: 'The daemon refused the request',
  invalid_request: 'The daemon refused the request',
  message_too_large: 'The message is too large',
  not_connected: 'Not connected to the parley daemon',
};

const RETRY_HELPS = new Set(['rate_limited', 'overloaded', 'network', 'timeout', 'interrupted', 'not_connected']);

export interface ErrorDescription {
  title: string;
  message: string;
  retryHelps: boolean;
  hint: string;
}

/** What happened and whether retrying may help, for the error banner. */
export function describeError(error: ErrorInfo): ErrorDescription {
  const title = ERROR_TITLES[error.code] ?? ERROR_TITLES.provider_error;
  const retryHelps = Boolean(error.retryable) || RETRY_HELPS.has(error.code);
  let hint: string;
  if (retryHelps) {
    hint =
      error.retryAfter != null && error.retryAfter > 0
        ? `Retrying may help after ${formatSeconds(error.retryAfter)}.`
        : 'Retrying may help.';
  } else if (error.code === 'context_length') {
    hint = 'Retrying will not help: start a new chat or shorten the input.';
  } else if (error.code === 'auth') {
    hint = 'Retrying will not help until the credentials are fixed.';
  } else if (error.code === 'unknown_model') {
    hint = 'Retrying will not help: pick another model.';
  } else {
    hint = 'Retrying the same request will probably not help.';
  }
  return { title, message: error.message, retryHelps, hint };
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds * 10) / 10} s`;
  return `${Math.ceil(seconds / 60)} min`;
}

export function isRunning(turn: TurnView): boolean {
  return turn.response?.status === 'running';
}
