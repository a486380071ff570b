/** Helpers for tests against the real daemon: `parley stdio` with a private PARLEY_HOME. */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ParleyClient, type ClientOptions, type Logger } from '../../src/client';
import type { ResponseEvent } from '../../src/protocol';
import { ROOT } from './paths';

/** The `parley` executable: $PARLEY_BIN, else the repository's virtualenv. */
export const PARLEY_BIN = process.env.PARLEY_BIN || path.resolve(ROOT, '../../.venv/bin/parley');

export class DaemonHome {
  readonly dir: string;
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-vscode-'));
    // The suites script the echo model, whatever else (a local model) is installed.
    fs.mkdirSync(path.join(this.dir, 'config'), { mode: 0o700 });
    fs.writeFileSync(path.join(this.dir, 'config', 'config.toml'), 'default_model = "echo"\n');
  }
  get env(): NodeJS.ProcessEnv {
    return { ...process.env, PARLEY_HOME: this.dir };
  }
  /** The pid of the daemon the bridge autostarted (from its lock file). */
  daemonPid(): number | undefined {
    try {
      const pid = Number.parseInt(fs.readFileSync(path.join(this.dir, 'run', 'parley.lock'), 'utf8').trim(), 10);
      return Number.isFinite(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }
  /** Signals the daemon and waits until it is gone. */
  async killDaemon(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | undefined> {
    const pid = this.daemonPid();
    if (!pid || !alive(pid)) return undefined;
    process.kill(pid, signal);
    await waitFor(() => !alive(pid), timeoutMs, `daemon ${pid} to exit after ${signal}`);
    return pid;
  }
  log(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'run', 'parleyd.log'), 'utf8');
    } catch {
      return '';
    }
  }
  async cleanup(): Promise<void> {
    await this.killDaemon('SIGTERM').catch(async () => this.killDaemon('SIGKILL'));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor<T>(fn: () => T | undefined | false | null, timeoutMs = 15_000, what = 'a condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const testLogger = (lines: string[]): Logger => ({
  info: (m) => lines.push(`info ${m}`),
  warn: (m) => lines.push(`warn ${m}`),
  error: (m) => lines.push(`error ${m}`),
});

export function makeClient(home: DaemonHome, extra: Partial<ClientOptions> = {}, log: string[] = []): ParleyClient {
  return new ParleyClient({
    executable: PARLEY_BIN,
    env: home.env,
    clientInfo: { name: 'parley-vscode-test' },
    backoff: { initialMs: 100, maxMs: 1000 },
    logger: testLogger(log),
    ...extra,
  });
}

/** An echo-model script prompt (PROTOCOL.md 8). */
export function script(...events: Array<Record<string, unknown>>): string {
  return JSON.stringify({ events });
}

/** Records every event the client delivers. */
export function recordEvents(client: ParleyClient): ResponseEvent[] {
  const events: ResponseEvent[] = [];
  client.onEvent((e) => events.push(e));
  return events;
}

export function slowWords(count: number, delayMs: number, prefix = 'w'): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, i) => ({ type: 'text', chunk: `${prefix}${i} `, delayMs }));
}
