/**
 * The parley wire protocol, version 1 (protocol/PROTOCOL.md, protocol/schema.json):
 * the shapes this extension sends and reads. Outputs may grow, so every output type
 * tolerates unknown fields; defaults are omitted on the wire, so optional fields are
 * optional here.
 */

export const PROTOCOL_VERSION = 1;

export interface ClientInfo {
  name: string;
  version?: string;
}

export interface InitializeResult {
  protocolVersion: number;
  serverInfo: { name: string; version: string };
  /** `eventRanges`: this connection may get merged deltas (`seqEnd`, PROTOCOL.md 7.2). */
  capabilities: { maxMessageSize: number; eventTypes?: string[]; toolExecution?: boolean; eventRanges?: boolean };
}

export interface ModelCapabilities {
  streaming?: boolean;
  tools?: boolean;
  reasoning?: boolean;
  attachments?: string[];
  schema?: boolean;
}

export interface ModelInfo {
  id: string;
  provider: string;
  aliases?: string[];
  default?: boolean;
  capabilities?: ModelCapabilities;
}

export interface Attachment {
  mimeType?: string | null;
  url?: string | null;
  path?: string | null;
  content?: string | null;
}

export type Part =
  | { type: 'text'; text: string; providerMetadata?: unknown }
  | { type: 'reasoning'; text: string; redacted?: boolean; tokenCount?: number | null; providerMetadata?: unknown }
  | {
      type: 'tool_call';
      name: string;
      arguments?: Record<string, unknown>;
      toolCallId?: string | null;
      serverExecuted?: boolean;
      providerMetadata?: { parley?: { partialArguments?: string } } & Record<string, unknown>;
    }
  | {
      type: 'tool_result';
      name: string;
      output: string;
      toolCallId?: string | null;
      exception?: string | null;
      serverExecuted?: boolean;
      attachments?: Attachment[] | null;
      providerMetadata?: unknown;
    }
  | { type: 'attachment'; attachment: Attachment; providerMetadata?: unknown };

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface Message {
  role: Role;
  parts: Part[];
  providerMetadata?: unknown;
}

export type ResponseStatus = 'running' | 'completed' | 'cancelled' | 'error' | 'interrupted';

export interface Usage {
  input?: number | null;
  output?: number | null;
  details?: Record<string, unknown> | null;
}

export interface ErrorInfo {
  code: string;
  message: string;
  retryable?: boolean;
  retryAfter?: number | null;
}

export interface ResponseRecord {
  id: string;
  conversationId: string;
  model: string;
  status: ResponseStatus;
  prompt: { messages: Message[]; system?: string | null; options?: Record<string, unknown> | null };
  messages: Message[];
  createdAt: string;
  usage?: Usage | null;
  durationMs?: number | null;
  error?: ErrorInfo | null;
}

export interface ConversationSummary {
  id: string;
  title: string;
  model: string;
  createdAt: string;
  updatedAt: string;
  responseCount: number;
}

export interface Conversation {
  id: string;
  title: string;
  messages: Message[];
  responseIds: string[];
}

export interface DaemonStatus {
  pid: number;
  version: string;
  socket?: string | null;
  uptimeS: number;
  connections: number;
  runningResponses: number;
}

export interface PromptParams {
  prompt?: string;
  attachments?: Attachment[];
  messages?: Message[];
  model?: string;
  system?: string;
  options?: Record<string, unknown>;
  conversationId?: string;
  hideReasoning?: boolean;
  /** The daemon's MCP servers whose tools the model gets; each call comes back as `tool/approve`. */
  mcpServers?: string[];
}

/** `tool/approve` (daemon → client): may this MCP tool call run? (PROTOCOL.md 9.1) */
export interface ToolApproveParams {
  responseId: string;
  toolCallId: string;
  server: string;
  name: string;
  tool: string;
  arguments: Record<string, unknown>;
  annotations?: Record<string, unknown> | null;
  description?: string | null;
}

export interface ToolApproveResult {
  decision: 'allow_once' | 'allow_always' | 'deny';
  reason?: string;
}

export interface StartedResult {
  responseId: string;
  conversationId: string;
}

interface EventBase {
  responseId: string;
  seq: number;
}

interface Ranged {
  /**
   * A merged delta, sent to a slow reader (PROTOCOL.md 6.1, 7.2): the event stands for the
   * seqs `seq`..`seqEnd` of one part, its `chunk` is all of theirs, and the next event's seq
   * is `seqEnd + 1`.
   */
  seqEnd?: number;
}

interface Indexed {
  /** Present on every part event from current daemons; counted by the client when absent. */
  partIndex?: number;
  messageIndex?: number;
}

export type ResponseEvent =
  | (EventBase & Indexed & Ranged & { type: 'text'; chunk: string })
  | (EventBase & Indexed & Ranged & { type: 'reasoning'; chunk: string; redacted?: boolean; providerMetadata?: unknown })
  | (EventBase & Indexed & { type: 'tool_call_name'; chunk: string; toolCallId: string })
  | (EventBase & Indexed & Ranged & { type: 'tool_call_args'; chunk: string; toolCallId: string })
  | (EventBase &
      Indexed & {
        type: 'tool_result';
        toolCallId: string;
        name: string;
        output: string;
        exception?: string | null;
        serverExecuted?: boolean;
      })
  | (EventBase & Indexed & { type: 'attachment'; mimeType: string; content?: string | null; url?: string | null })
  | (EventBase & { type: 'usage'; input?: number | null; output?: number | null; details?: Record<string, unknown> | null })
  | (EventBase & { type: 'error'; code: string; message: string; retryable?: boolean; retryAfter?: number | null })
  | (EventBase & { type: 'done'; status: 'completed' | 'cancelled' | 'error' });

export type EventType = ResponseEvent['type'];

/** The last seq an event stands for: its `seqEnd` when it is a merged delta, else its `seq`. */
export function lastSeqOf(event: ResponseEvent): number {
  return 'seqEnd' in event && typeof event.seqEnd === 'number' && event.seqEnd > event.seq ? event.seqEnd : event.seq;
}

export interface LaggedParams {
  responseId: string;
  lastSeq: number;
}

/** `data.kind` of JSON-RPC error answers (PROTOCOL.md 10.1). */
export type ErrorKind =
  | 'parse_error'
  | 'invalid_request'
  | 'method_not_found'
  | 'invalid_params'
  | 'internal'
  | 'not_initialized'
  | 'cancelled'
  | 'unknown_model'
  | 'unknown_response'
  | 'unknown_conversation'
  | 'auth_failed'
  | 'message_too_large';

/** Client → daemon requests and their params/results. */
export interface Methods {
  initialize: [{ protocolVersion: number; clientInfo: ClientInfo; authToken?: string; capabilities?: { eventRanges?: boolean } }, InitializeResult];
  'models/list': [Record<string, never>, { models: ModelInfo[] }];
  prompt: [PromptParams, StartedResult];
  'response/get': [{ responseId: string }, ResponseRecord];
  'response/subscribe': [{ responseId: string; afterSeq?: number }, { lastSeq: number }];
  'response/unsubscribe': [{ responseId: string }, Record<string, never>];
  'response/cancel': [{ responseId: string }, { status: ResponseStatus }];
  'conversations/list': [{ limit?: number; before?: string; query?: string }, { conversations: ConversationSummary[] }];
  'conversations/get': [{ conversationId: string }, Conversation];
  'conversations/delete': [{ conversationId: string }, Record<string, never>];
  'daemon/status': [Record<string, never>, DaemonStatus];
}

export type Method = keyof Methods;
export type ParamsOf<M extends Method> = Methods[M][0];
export type ResultOf<M extends Method> = Methods[M][1];
