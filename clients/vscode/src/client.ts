/**
 * The connection to the user's parley daemon: it launches `parley stdio` (which starts
 * the daemon when none runs) and speaks JSON-RPC over the child's stdio with
 * vscode-jsonrpc. It keeps the last `seq` of every response it follows, so events reach
 * listeners exactly once and in order: duplicates are dropped, a merged delta (`seqEnd`,
 * sent to a slow reader) counts as the seqs it stands for, a gap or a
 * `response/lagged` resubscribes from the last seq, and when `parley stdio` exits (the
 * daemon stopped or crashed) it is started again with backoff and every followed
 * response is reattached: a running one is resubscribed from its last seq, a finished
 * one (including one a crash left `interrupted`) is read back with `response/get`.
 *
 * Nothing here imports `vscode`: the tests run it in Node against the real daemon.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import {
  createMessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import {
  PROTOCOL_VERSION,
  lastSeqOf,
  type ClientInfo,
  type InitializeResult,
  type LaggedParams,
  type Method,
  type ParamsOf,
  type ResponseEvent,
  type ResponseRecord,
  type ResultOf,
  type ToolApproveParams,
  type ToolApproveResult,
} from './protocol';

export type ConnectionState =
  | { kind: 'idle' }
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected'; serverVersion: string; maxMessageSize: number }
  | { kind: 'reconnecting'; attempt: number; retryInMs: number; reason: string }
  | { kind: 'missing'; executable: string; message: string }
  | { kind: 'stopped' };

export const INSTALL_HINT =
  'Install parley (from its repository: `python3 -m venv .venv && .venv/bin/pip install -e .`), then put `parley` on your PATH or set the `parley.executable` setting to its full path.';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

export interface ClientOptions {
  /** The `parley` executable: a name on PATH or a path (`~/` is expanded). */
  executable: string;
  /** Arguments before nothing else: default `['stdio']`. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  clientInfo?: ClientInfo;
  logger?: Logger;
  /** Reconnect delays: the first, doubled per attempt up to the max. */
  backoff?: { initialMs: number; maxMs: number };
  /** How long `initialize` may take (the bridge may have to start the daemon first). */
  initializeTimeoutMs?: number;
  /** How long a request waits for a connection that is being (re)established. */
  connectWaitMs?: number;
}

/** A request failed: `kind` is the daemon's `data.kind`, or `not_connected`. */
export class ParleyError extends Error {
  constructor(
    message: string,
    readonly kind: string,
    readonly code?: number,
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ParleyError';
  }
}

type Listener<T> = (value: T) => void;

class Emitter<T> {
  private listeners = new Set<Listener<T>>();
  on(listener: Listener<T>): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }
  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch {
        // a listener's failure is its own
      }
    }
  }
}

/** Events of responses not followed are held this long (and at most this many), for `follow` to pick up. */
const ORPHAN_LIMIT = 512;
const ORPHAN_TTL_MS = 10_000;

export class ParleyClient {
  private readonly opts: Required<Omit<ClientOptions, 'env' | 'cwd'>> & Pick<ClientOptions, 'env' | 'cwd'>;
  private readonly log: Logger;
  private proc: ChildProcess | undefined;
  private conn: MessageConnection | undefined;
  private _state: ConnectionState = { kind: 'idle' };
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  private generation = 0;
  private stderrTail = '';
  /** responseId → the last seq delivered to listeners (a merged event's `seqEnd`). */
  private readonly followed = new Map<string, number>();
  /** Responses being resubscribed after a gap: gaps are not chased again meanwhile. */
  private readonly resyncing = new Set<string>();
  /** Events of responses not (yet) followed: `prompt`'s events may beat its answer. */
  private orphans: Array<{ at: number; event: ResponseEvent }> = [];
  private readonly stateEmitter = new Emitter<ConnectionState>();
  private readonly eventEmitter = new Emitter<ResponseEvent>();
  private readonly recordEmitter = new Emitter<ResponseRecord>();
  private readonly lostEmitter = new Emitter<{ responseId: string; error: ParleyError }>();
  private readonly connectedEmitter = new Emitter<InitializeResult>();
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** Answers the daemon's `tool/approve` (an MCP tool call of a prompt of ours); none: every call is denied. */
  approve: ((params: ToolApproveParams) => Promise<ToolApproveResult>) | undefined;

  constructor(options: ClientOptions) {
    this.opts = {
      args: ['stdio'],
      clientInfo: { name: 'parley-vscode' },
      logger: silentLogger,
      backoff: { initialMs: 250, maxMs: 10_000 },
      initializeTimeoutMs: 30_000,
      connectWaitMs: 30_000,
      ...options,
    };
    this.log = this.opts.logger;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Connection state changes. */
  onState(listener: Listener<ConnectionState>) {
    return this.stateEmitter.on(listener);
  }
  /** Events of followed responses, once each, in seq order. */
  onEvent(listener: Listener<ResponseEvent>) {
    return this.eventEmitter.on(listener);
  }
  /** A followed response found finished on reattach: its stored record replaces the stream. */
  onRecord(listener: Listener<ResponseRecord>) {
    return this.recordEmitter.on(listener);
  }
  /** A followed response that the daemon no longer knows, or that could not be reattached. */
  onLost(listener: Listener<{ responseId: string; error: ParleyError }>) {
    return this.lostEmitter.on(listener);
  }
  /** Each successful `initialize` (the first connection and every reconnection). */
  onConnected(listener: Listener<InitializeResult>) {
    return this.connectedEmitter.on(listener);
  }

  /** Connects; resolves once initialized, rejects when the executable is missing. */
  start(): Promise<void> {
    if (this.disposed) return Promise.reject(new ParleyError('the client was disposed', 'not_connected'));
    if (this._state.kind === 'idle' || this._state.kind === 'missing' || this._state.kind === 'stopped') {
      this.attempt = 0;
      this.connect();
    }
    return this.ready();
  }

  /** Drops the current connection (if any) and connects again at once, e.g. after a settings change. */
  restart(options?: Partial<Pick<ClientOptions, 'executable' | 'args' | 'env'>>): Promise<void> {
    Object.assign(this.opts, options ?? {});
    this.teardown();
    this.attempt = 0;
    this.connect();
    return this.ready();
  }

  /** Resolves when connected; rejects at once when the executable is missing. */
  ready(timeoutMs = this.opts.connectWaitMs): Promise<void> {
    const state = this._state;
    if (state.kind === 'connected') return Promise.resolve();
    if (state.kind === 'missing') return Promise.reject(new ParleyError(state.message, 'not_connected'));
    if (state.kind === 'idle' || state.kind === 'stopped') {
      return Promise.reject(new ParleyError('not connected to the parley daemon', 'not_connected'));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new ParleyError(`could not connect to the parley daemon${this.reasonSuffix()}`, 'not_connected'));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private reasonSuffix(): string {
    const s = this._state;
    return s.kind === 'reconnecting' ? `: ${s.reason}` : '';
  }

  async request<M extends Method>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    if (this._state.kind !== 'connected') await this.ready();
    const conn = this.conn;
    const state = this._state;
    if (!conn || state.kind !== 'connected') throw new ParleyError('not connected to the parley daemon', 'not_connected');
    // The daemon refuses a message over its limit without saying which (PROTOCOL.md 2.7): check here.
    const size = Buffer.byteLength(JSON.stringify({ jsonrpc: '2.0', id: 2 ** 31, method, params }), 'utf8');
    if (size > state.maxMessageSize) {
      throw new ParleyError(`the message is ${size} bytes, over the daemon's ${state.maxMessageSize}-byte limit`, 'message_too_large');
    }
    try {
      return (await conn.sendRequest(method, params)) as ResultOf<M>;
    } catch (e) {
      throw toParleyError(e);
    }
  }

  // -- following responses -------------------------------------------------------------

  /** Delivers this response's events after `lastSeq` (and reattaches it after reconnects). */
  follow(responseId: string, lastSeq = 0): void {
    const known = this.followed.get(responseId);
    this.followed.set(responseId, Math.max(known ?? 0, lastSeq));
    const held = this.orphans.filter((o) => o.event.responseId === responseId);
    if (held.length) {
      this.orphans = this.orphans.filter((o) => o.event.responseId !== responseId);
      for (const { event } of held) this.handleEvent(event);
    }
  }

  unfollow(responseId: string, unsubscribe = true): void {
    if (!this.followed.delete(responseId)) return;
    this.resyncing.delete(responseId);
    if (unsubscribe && this._state.kind === 'connected') {
      this.request('response/unsubscribe', { responseId }).catch(() => {});
    }
  }

  isFollowing(responseId: string): boolean {
    return this.followed.has(responseId);
  }

  lastSeq(responseId: string): number | undefined {
    return this.followed.get(responseId);
  }

  /**
   * Follows a response that may have run on while this client was away (a reload, a
   * reconnect): a running one is subscribed from `afterSeq`; a finished one is read back,
   * and its record is both returned and announced with `onRecord`.
   */
  async attach(responseId: string, afterSeq: number): Promise<ResponseRecord | undefined> {
    this.follow(responseId, afterSeq);
    let record: ResponseRecord;
    try {
      record = await this.request('response/get', { responseId });
    } catch (e) {
      const error = toParleyError(e);
      if (error.kind === 'unknown_response') {
        this.followed.delete(responseId);
        this.lostEmitter.fire({ responseId, error });
      }
      throw error;
    }
    if (!this.followed.has(responseId)) return undefined; // done arrived meanwhile, or unfollowed
    if (record.status === 'running') {
      await this.request('response/subscribe', { responseId, afterSeq: this.followed.get(responseId) ?? afterSeq });
      return undefined;
    }
    // Finished while away. A crash leaves no `done` in the stored events (PROTOCOL.md 7.4),
    // so the record, not a replay, says how it ended.
    this.followed.delete(responseId);
    this.recordEmitter.fire(record);
    return record;
  }

  private handleEvent(event: ResponseEvent): void {
    const last = this.followed.get(event.responseId);
    if (last === undefined) {
      const now = Date.now();
      this.orphans.push({ at: now, event });
      while (this.orphans.length && (this.orphans.length > ORPHAN_LIMIT || now - this.orphans[0].at > ORPHAN_TTL_MS)) this.orphans.shift();
      return;
    }
    // A merged delta (`seqEnd`, PROTOCOL.md 7.2) stands for seq..seqEnd: it is delivered once
    // and counts as its last seq.
    const end = lastSeqOf(event);
    if (end <= last) return; // already delivered
    if (event.seq > last + 1) {
      // A gap (PROTOCOL.md 6.1): resubscribe from what we have.
      if (!this.resyncing.has(event.responseId)) this.resubscribe(event.responseId, 'a gap in seq');
      return;
    }
    if (event.seq <= last) {
      // Partly delivered already: its chunk cannot be split, so fetch the rest one seq at a time.
      if (!this.resyncing.has(event.responseId)) this.resubscribe(event.responseId, 'a merged event overlaps');
      return;
    }
    if (event.type === 'done') {
      this.followed.delete(event.responseId);
      this.resyncing.delete(event.responseId);
    } else {
      this.followed.set(event.responseId, end);
    }
    this.eventEmitter.fire(event);
  }

  private resubscribe(responseId: string, why: string): void {
    const afterSeq = this.followed.get(responseId);
    if (afterSeq === undefined) return;
    this.log.info(`resubscribing to ${responseId} after seq ${afterSeq} (${why})`);
    this.resyncing.add(responseId);
    this.request('response/subscribe', { responseId, afterSeq })
      .catch((e) => this.log.warn(`resubscribe ${responseId}: ${String(e)}`))
      .finally(() => this.resyncing.delete(responseId));
  }

  // -- the process and its connection --------------------------------------------------

  private setState(state: ConnectionState): void {
    this._state = state;
    this.stateEmitter.fire(state);
    if (state.kind === 'connected') {
      for (const w of this.waiters.splice(0)) w.resolve();
    } else if (state.kind === 'missing' || state.kind === 'stopped') {
      const error = new ParleyError(state.kind === 'missing' ? state.message : 'the client stopped', 'not_connected');
      for (const w of this.waiters.splice(0)) w.reject(error);
    }
  }

  private executablePath(): string {
    const exe = this.opts.executable.trim() || 'parley';
    return exe.startsWith('~/') ? os.homedir() + exe.slice(1) : exe;
  }

  private connect(): void {
    if (this.disposed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const generation = ++this.generation;
    this.attempt++;
    if (this._state.kind !== 'reconnecting') this.setState({ kind: 'connecting', attempt: this.attempt });
    const exe = this.executablePath();
    this.stderrTail = '';
    let proc: ChildProcess;
    try {
      proc = spawn(exe, this.opts.args, {
        env: this.opts.env ?? process.env,
        cwd: this.opts.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
    } catch (e) {
      this.spawnFailed(generation, exe, e as NodeJS.ErrnoException);
      return;
    }
    this.proc = proc;
    proc.on('error', (e: NodeJS.ErrnoException) => this.spawnFailed(generation, exe, e));
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
      for (const line of chunk.split('\n')) if (line.trim()) this.log.info(`[parley stdio] ${line}`);
    });
    proc.on('exit', (code, signal) => {
      if (generation !== this.generation) return;
      const why = this.stderrTail.trim().split('\n').pop() || `exited with ${signal ?? `status ${code}`}`;
      this.lost(generation, `parley stdio ${why === '' ? 'exited' : `exited: ${why}`}`);
    });
    if (proc.pid === undefined) return; // 'error' follows

    const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    this.conn = conn;
    conn.onNotification('response/event', (event: ResponseEvent) => {
      if (generation === this.generation) this.handleEvent(event);
    });
    conn.onNotification('response/lagged', (params: LaggedParams) => {
      if (generation === this.generation && this.followed.has(params.responseId)) this.resubscribe(params.responseId, 'lagged');
    });
    conn.onRequest('tool/approve', (params: ToolApproveParams): Promise<ToolApproveResult> | ToolApproveResult =>
      this.approve ? this.approve(params) : { decision: 'deny', reason: 'this client has no way to ask the user' },
    );
    conn.onClose(() => this.lost(generation, 'the connection closed'));
    conn.onError(([error]) => this.log.warn(`connection error: ${error?.message ?? error}`));
    proc.stdin?.on('error', () => {}); // EPIPE when the bridge dies: handled by 'exit'
    conn.listen();

    const init = conn.sendRequest('initialize', {
      protocolVersion: PROTOCOL_VERSION,
      clientInfo: this.opts.clientInfo,
    }) as Promise<InitializeResult>;
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no answer to initialize within ${this.opts.initializeTimeoutMs} ms`)), this.opts.initializeTimeoutMs).unref(),
    );
    Promise.race([init, timeout]).then(
      (result) => {
        if (generation !== this.generation) return;
        this.attempt = 0;
        this.log.info(`connected to parleyd ${result.serverInfo.version}`);
        this.setState({
          kind: 'connected',
          serverVersion: result.serverInfo.version,
          maxMessageSize: result.capabilities.maxMessageSize,
        });
        this.connectedEmitter.fire(result);
        this.reattachAll();
      },
      (e) => {
        if (generation !== this.generation) return;
        this.log.warn(`initialize failed: ${String(e?.message ?? e)}`);
        this.lost(generation, `initialize failed: ${String(e?.message ?? e)}`);
      },
    );
  }

  private reattachAll(): void {
    for (const [responseId, lastSeq] of [...this.followed]) {
      this.attach(responseId, lastSeq).catch((e) => this.log.warn(`reattach ${responseId}: ${String(e)}`));
    }
  }

  private spawnFailed(generation: number, exe: string, e: NodeJS.ErrnoException): void {
    if (generation !== this.generation) return;
    this.teardown();
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'ENOTDIR') {
      const what = e.code === 'EACCES' ? 'is not executable' : 'was not found';
      const message = `The parley executable \`${exe}\` ${what}. ${INSTALL_HINT}`;
      this.log.error(message);
      this.setState({ kind: 'missing', executable: exe, message });
      return;
    }
    this.scheduleReconnect(`could not start ${exe}: ${e.message}`);
  }

  private lost(generation: number, reason: string): void {
    if (generation !== this.generation || this.disposed) return;
    if (this._state.kind === 'missing') return;
    this.log.warn(`lost the daemon connection: ${reason}`);
    this.teardown();
    this.scheduleReconnect(reason);
  }

  private scheduleReconnect(reason: string): void {
    if (this.disposed) return;
    const { initialMs, maxMs } = this.opts.backoff;
    const delay = Math.min(maxMs, initialMs * 2 ** Math.max(0, this.attempt - 1));
    this.setState({ kind: 'reconnecting', attempt: this.attempt, retryInMs: delay, reason });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Ends the current process and connection without touching followed responses. */
  private teardown(): void {
    this.generation++;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.resyncing.clear();
    const conn = this.conn;
    const proc = this.proc;
    this.conn = undefined;
    this.proc = undefined;
    try {
      conn?.dispose();
    } catch {
      // already closed
    }
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      proc.stdin?.end(); // the bridge exits when its stdin closes
      const kill = setTimeout(() => proc.kill('SIGTERM'), 2000);
      kill.unref();
      proc.once('exit', () => clearTimeout(kill));
    }
  }

  /** Closes the connection for good. Responses keep running in the daemon. */
  dispose(): void {
    if (this.disposed) return;
    this.teardown();
    this.disposed = true;
    this.setState({ kind: 'stopped' });
  }

  /** The pid of the running `parley stdio` bridge (tests use it). */
  get bridgePid(): number | undefined {
    return this.proc?.pid;
  }
}

export function toParleyError(e: unknown): ParleyError {
  if (e instanceof ParleyError) return e;
  if (e instanceof ResponseError) {
    const data = (e.data ?? {}) as Record<string, unknown>;
    const kind = typeof data.kind === 'string' ? data.kind : 'internal';
    return new ParleyError(e.message, kind, e.code, data);
  }
  const message = e instanceof Error ? e.message : String(e);
  return new ParleyError(message, 'not_connected');
}
