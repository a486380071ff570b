/**
 * One chat: the conversation shown in the panel, its turns, the chosen model, and the
 * running response. It turns user actions into requests (`prompt`, `response/cancel`,
 * `conversations/get`, …), applies the client's events to the view model, tells the
 * view what changed, and saves a snapshot so that a reloaded window picks up a running
 * response from its last seq. No `vscode` import: tested in Node against the daemon.
 */

import { ParleyError, toParleyError, type ConnectionState, type ParleyClient } from './client';
import type { ConversationSummary, ModelInfo, ResponseEvent, ResponseRecord } from './protocol';
import {
  applyEvent,
  newResponse,
  responseFromRecord,
  turnsFromMessages,
  type ResponseView,
  type SessionSnapshot,
  type TurnView,
} from './view';

/** What the host tells the webview. */
export type ViewUpdate =
  | { type: 'snapshot'; snapshot: SessionSnapshot; models: ModelInfo[]; model?: string; connection: ConnectionState }
  | { type: 'turn'; turn: TurnView }
  | { type: 'event'; turnId: string; event: ResponseEvent }
  | { type: 'response'; turnId: string; response: ResponseView }
  | { type: 'models'; models: ModelInfo[]; model?: string }
  | { type: 'connection'; state: ConnectionState }
  | { type: 'notice'; level: 'info' | 'error'; message: string };

/** Where the session keeps its snapshot: VS Code's workspaceState in the extension. */
export interface SnapshotStore {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Thenable<void> | Promise<void> | void;
}

interface Thenable<T> {
  then<R>(onfulfilled?: (value: T) => R): Thenable<R>;
}

export const SNAPSHOT_KEY = 'parley.session';
export const MODEL_KEY = 'parley.model';
/** Past this size a snapshot keeps only the conversation id: the daemon has the rest. */
const SNAPSHOT_LIMIT = 4 * 1024 * 1024;

interface StoredSnapshot extends SessionSnapshot {
  version: 1;
}

export interface SessionOptions {
  /** The daemon's MCP servers each prompt names (the `parley.mcpServers` setting). */
  mcpServers?: () => string[];
  /** Delay before a changed snapshot is written. */
  saveDelayMs?: number;
}

let turnCounter = 0;
const newTurnId = () => `t${Date.now().toString(36)}${(turnCounter++).toString(36)}`;

export class ChatSession {
  private snapshot: SessionSnapshot = { turns: [] };
  private _models: ModelInfo[] = [];
  private _model: string | undefined;
  private readonly listeners = new Set<(u: ViewUpdate) => void>();
  private readonly disposables: Array<{ dispose(): void }> = [];
  private saveTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly saveDelayMs: number;
  private readonly mcpServers: () => string[];

  constructor(
    readonly client: ParleyClient,
    private readonly store: SnapshotStore,
    options: SessionOptions = {},
  ) {
    this.saveDelayMs = options.saveDelayMs ?? 250;
    this.mcpServers = options.mcpServers ?? (() => []);
    this._model = store.get<string>(MODEL_KEY);
    this.disposables.push(
      client.onEvent((e) => this.onEvent(e)),
      client.onRecord((r) => this.onRecord(r)),
      client.onLost(({ responseId, error }) => this.onLost(responseId, error)),
      client.onState((state) => this.emit({ type: 'connection', state })),
      client.onConnected(() => {
        this.refreshModels().catch(() => {});
      }),
    );
  }

  // -- reading --------------------------------------------------------------------------

  get conversationId(): string | undefined {
    return this.snapshot.conversationId;
  }
  get turns(): readonly TurnView[] {
    return this.snapshot.turns;
  }
  get models(): readonly ModelInfo[] {
    return this._models;
  }
  /** The chosen model id, or undefined for the daemon's default. */
  get model(): string | undefined {
    return this._model;
  }
  get running(): TurnView[] {
    return this.snapshot.turns.filter((t) => t.response?.status === 'running' && t.response.responseId);
  }
  currentSnapshot(): SessionSnapshot {
    return structuredClone(this.snapshot);
  }

  onUpdate(listener: (u: ViewUpdate) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** The whole state, for a (re)loaded view. */
  fullUpdate(): ViewUpdate {
    return {
      type: 'snapshot',
      snapshot: this.currentSnapshot(),
      models: [...this._models],
      model: this._model,
      connection: this.client.state,
    };
  }

  private emit(update: ViewUpdate): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(update);
      } catch {
        // the view's problem
      }
    }
  }

  // -- models ---------------------------------------------------------------------------

  async refreshModels(): Promise<ModelInfo[]> {
    const { models } = await this.client.request('models/list', {});
    this._models = models;
    this.emit({ type: 'models', models: [...models], model: this._model });
    return models;
  }

  /** The model a prompt will use: the chosen one, else the daemon's default. */
  effectiveModel(): string | undefined {
    return this._model ?? this._models.find((m) => m.default)?.id;
  }

  async setModel(model: string | undefined): Promise<void> {
    this._model = model || undefined;
    await this.store.update(MODEL_KEY, this._model);
    this.emit({ type: 'models', models: [...this._models], model: this._model });
  }

  // -- chatting -------------------------------------------------------------------------

  /**
   * Sends a user message in this conversation (a new one when there is none). The turn
   * shows at once; a request that fails becomes an error banner on it.
   */
  async send(text: string): Promise<TurnView> {
    if (!text.trim()) throw new ParleyError('nothing to send', 'invalid_params');
    if (this.running.length) {
      throw new ParleyError('a response is still running: stop it or wait for it to finish', 'invalid_request');
    }
    const turn: TurnView = { id: newTurnId(), user: text, response: newResponse('', this.effectiveModel()) };
    this.snapshot.turns.push(turn);
    this.emit({ type: 'turn', turn: structuredClone(turn) });
    try {
      const started = await this.client.request('prompt', {
        prompt: text,
        ...(this._model ? { model: this._model } : {}),
        ...(this.snapshot.conversationId ? { conversationId: this.snapshot.conversationId } : {}),
        ...(this.mcpServers().length ? { mcpServers: this.mcpServers() } : {}),
      });
      if (!this.snapshot.conversationId) {
        this.snapshot.conversationId = started.conversationId;
        this.snapshot.title = text.replace(/\s+/g, ' ').trim().slice(0, 80);
      }
      turn.response!.responseId = started.responseId;
      this.emit({ type: 'response', turnId: turn.id, response: structuredClone(turn.response!) });
      this.client.follow(started.responseId, turn.response!.lastSeq);
    } catch (e) {
      const error = toParleyError(e);
      turn.response = { ...turn.response!, status: 'error', error: { code: error.kind, message: error.message } };
      this.emit({ type: 'response', turnId: turn.id, response: structuredClone(turn.response) });
    }
    this.scheduleSave();
    return turn;
  }

  /** Sends the user message of a failed turn again, as a new turn. */
  async retry(turnId: string): Promise<TurnView | undefined> {
    const turn = this.snapshot.turns.find((t) => t.id === turnId);
    if (!turn || !turn.user) return undefined;
    return this.send(turn.user);
  }

  /** Cancels this chat's running responses. Their partial answers stay. */
  async cancel(): Promise<void> {
    await Promise.all(
      this.running.map((t) =>
        this.client.request('response/cancel', { responseId: t.response!.responseId }).catch((e) => {
          this.emit({ type: 'notice', level: 'error', message: `Could not stop the response: ${toParleyError(e).message}` });
        }),
      ),
    );
  }

  /** Clears the panel. A running response goes on in the daemon (and in its history). */
  newChat(): void {
    this.release();
    this.snapshot = { turns: [] };
    this.emit(this.fullUpdate());
    this.scheduleSave();
  }

  async listConversations(query?: string, limit = 50): Promise<ConversationSummary[]> {
    const q = query?.trim();
    const { conversations } = await this.client.request('conversations/list', { limit, ...(q ? { query: q } : {}) });
    return conversations;
  }

  /**
   * Shows a stored conversation. When its latest response still runs, the stream is
   * picked up from the start, so the panel shows it growing.
   */
  async resume(conversationId: string): Promise<void> {
    const conversation = await this.client.request('conversations/get', { conversationId });
    const lastId = conversation.responseIds[conversation.responseIds.length - 1];
    const record = lastId ? await this.client.request('response/get', { responseId: lastId }) : undefined;
    this.release();
    let turns: TurnView[];
    if (record && record.status === 'running') {
      turns = turnsFromMessages(record.prompt.messages, newTurnId);
      if (!turns.length) turns.push({ id: newTurnId(), user: '' });
      turns[turns.length - 1].response = newResponse(record.id, record.model);
    } else {
      turns = turnsFromMessages(conversation.messages, newTurnId);
      const last = turns[turns.length - 1];
      if (record && last) {
        const stored = responseFromRecord(record);
        // The chain's parts already hold this output; the record adds how it ended.
        last.response = { ...stored, parts: last.response?.parts ?? stored.parts };
      }
    }
    this.snapshot = { conversationId, title: conversation.title, turns };
    this.emit(this.fullUpdate());
    if (record?.status === 'running') {
      this.client.follow(record.id, 0);
      await this.client.attach(record.id, 0);
    }
    this.scheduleSave();
  }

  /** Picks up the saved snapshot (a reloaded window): running responses resume from their last seq. */
  async restore(): Promise<void> {
    const saved = this.store.get<StoredSnapshot | { version: 1; conversationId: string; large: true }>(SNAPSHOT_KEY);
    if (!saved || saved.version !== 1) return;
    if ('large' in saved) {
      await this.resume(saved.conversationId);
      return;
    }
    this.snapshot = { conversationId: saved.conversationId, title: saved.title, turns: saved.turns ?? [] };
    this.emit(this.fullUpdate());
    await Promise.all(
      this.running.map(async (turn) => {
        const r = turn.response!;
        try {
          await this.client.attach(r.responseId, r.lastSeq);
        } catch (e) {
          // onLost handled an unknown response; anything else shows on the turn
          if (toParleyError(e).kind !== 'unknown_response') this.failTurn(turn, toParleyError(e));
        }
      }),
    );
  }

  // -- from the client ------------------------------------------------------------------

  private turnOf(responseId: string): TurnView | undefined {
    return this.snapshot.turns.find((t) => t.response?.responseId === responseId);
  }

  private onEvent(event: ResponseEvent): void {
    const turn = this.turnOf(event.responseId);
    if (!turn?.response) return;
    if (!applyEvent(turn.response, event)) return;
    this.emit({ type: 'event', turnId: turn.id, event });
    this.scheduleSave(event.type === 'done' ? 0 : undefined);
  }

  private onRecord(record: ResponseRecord): void {
    const turn = this.turnOf(record.id);
    if (!turn) return;
    turn.response = responseFromRecord(record, turn.response?.lastSeq ?? 0);
    this.emit({ type: 'response', turnId: turn.id, response: structuredClone(turn.response) });
    this.scheduleSave(0);
  }

  private onLost(responseId: string, error: ParleyError): void {
    const turn = this.turnOf(responseId);
    if (turn) this.failTurn(turn, error);
  }

  private failTurn(turn: TurnView, error: ParleyError): void {
    if (!turn.response) return;
    turn.response.status = 'error';
    turn.response.error = { code: error.kind, message: error.message };
    this.emit({ type: 'response', turnId: turn.id, response: structuredClone(turn.response) });
    this.scheduleSave(0);
  }

  /** Stops following this chat's responses (they run on in the daemon). */
  private release(): void {
    for (const turn of this.snapshot.turns) {
      if (turn.response?.responseId) this.client.unfollow(turn.response.responseId);
    }
  }

  // -- persistence ----------------------------------------------------------------------

  private scheduleSave(delay = this.saveDelayMs): void {
    if (this.saveTimer !== undefined && delay > 0) return;
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.save();
    }, delay);
  }

  /** Writes the snapshot now. */
  async save(): Promise<void> {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const stored: StoredSnapshot = { version: 1, ...this.snapshot };
    const size = JSON.stringify(stored).length;
    if (size > SNAPSHOT_LIMIT && this.snapshot.conversationId) {
      await this.store.update(SNAPSHOT_KEY, { version: 1, conversationId: this.snapshot.conversationId, large: true });
    } else {
      await this.store.update(SNAPSHOT_KEY, stored);
    }
  }

  dispose(): void {
    for (const d of this.disposables.splice(0)) d.dispose();
    this.listeners.clear();
  }
}

/** A SnapshotStore in memory (tests, and when no storage is available). */
export class MemoryStore implements SnapshotStore {
  readonly data = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    return this.data.get(key) as T | undefined;
  }
  update(key: string, value: unknown): void {
    if (value === undefined) this.data.delete(key);
    else this.data.set(key, structuredClone(value));
  }
}
