/**
 * The client's seq bookkeeping against a scripted bridge (test/helpers/scripted-bridge.cjs)
 * that sends a duplicate, a gap and a `response/lagged`, which the real daemon does only
 * under load: listeners still get every event once, in order.
 */

import * as path from 'node:path';
import { afterEach, it } from 'node:test';
import { expect } from 'expect';
import { ParleyClient } from '../src/client';
import type { ResponseEvent } from '../src/protocol';
import { waitFor } from './helpers/daemon';
import { TEST_DIR } from './helpers/paths';

let client: ParleyClient | undefined;
afterEach(() => client?.dispose());

it('drops duplicates and resubscribes from the last seq after a gap or a lag', { timeout: 30_000 }, async () => {
  client = new ParleyClient({ executable: process.execPath, args: [path.join(TEST_DIR, 'helpers', 'scripted-bridge.cjs')] });
  const events: ResponseEvent[] = [];
  client.onEvent((e) => events.push(e));
  await client.start();
  const started = await client.request('prompt', { prompt: 'go' });
  client.follow(started.responseId);
  await waitFor(() => events.some((e) => e.type === 'done'), 10_000, 'done');
  expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  expect(client.isFollowing(started.responseId)).toBe(false);
  // it asked for the events after the last one it had (2), not from the start
  const { subscribes } = (await (client as unknown as { conn: { sendRequest(m: string): Promise<{ subscribes: number[] }> } }).conn.sendRequest(
    'test/subscribes',
  )) as { subscribes: number[] };
  expect(subscribes.length).toBeGreaterThanOrEqual(1);
  expect(subscribes.every((s) => s === 2)).toBe(true);
});
