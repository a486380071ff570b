#!/usr/bin/env node
// A stand-in for `parley stdio` that misbehaves on purpose, for the client's seq handling:
// it sends events out of order, twice, with a gap, and a `response/lagged`, then serves
// `response/subscribe` from a stored log like the daemon does.
const { createMessageConnection, StreamMessageReader, StreamMessageWriter } = require('vscode-jsonrpc/node');

const conn = createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
const id = 'resp_scripted';
const log = [1, 2, 3, 4, 5, 6].map((seq) => ({ type: 'text', chunk: `c${seq} `, partIndex: 0, messageIndex: 0, responseId: id, seq }));
log.push({ type: 'done', status: 'completed', responseId: id, seq: 7 });
const subscribes = [];
const send = (seq) => conn.sendNotification('response/event', log[seq - 1]);

conn.onRequest('initialize', () => ({ protocolVersion: 1, serverInfo: { name: 'parleyd', version: 'scripted' }, capabilities: { maxMessageSize: 1 << 20 } }));
conn.onRequest('prompt', () => {
  setTimeout(() => {
    send(1);
    send(1); // a duplicate
    send(2);
    send(4); // a gap: 3 is missing
    send(5);
    conn.sendNotification('response/lagged', { responseId: id, lastSeq: 2 });
  }, 20);
  return { responseId: id, conversationId: 'conv_scripted' };
});
conn.onRequest('response/subscribe', (params) => {
  subscribes.push(params.afterSeq);
  setTimeout(() => {
    for (let seq = params.afterSeq + 1; seq <= log.length; seq++) send(seq);
  }, 20);
  return {};
});
conn.onRequest('test/subscribes', () => ({ subscribes }));
conn.listen();
process.stdin.on('end', () => process.exit(0));
