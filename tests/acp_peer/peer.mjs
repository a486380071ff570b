// A second, independent ACP peer for parley's tests: the official TypeScript SDK as the client.
//
// tests/test_acp_node_peer.py runs it with node. It spawns the agent named by ACP_PEER_ARGV (a JSON
// list) in ACP_PEER_CWD, with this process's environment, and drives one session through the
// SDK's client app over ndJsonStream: initialize, session/new, session/set_config_option for the
// model and the reasoning option, one prompt (ACP_PEER_PROMPT, as one text block) whose tool call
// asks for permission, allowed here, and whose file the agent then reads through fs/read_text_file
// (answered from disk), then session/list. It prints a JSON summary on stdout.
//
// The SDK validates leniently and reports what it cannot parse with console.error, so everything
// it says there is collected into the summary's `sdkErrors`, which must stay empty.

import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";

const argv = JSON.parse(process.env.ACP_PEER_ARGV);
const cwd = process.env.ACP_PEER_CWD;
const promptText = process.env.ACP_PEER_PROMPT;

const summary = { sdkErrors: [], updates: [], permissionRequests: [], reads: [], agentRequests: [] };
const timeoutMs = Number(process.env.ACP_PEER_TIMEOUT_MS ?? 30000);
const report = () => process.stdout.write(JSON.stringify(summary) + "\n");
setTimeout(() => {
  summary.error = `no answer to ${summary.waitingFor} within ${timeoutMs} ms`;
  agentProcess.kill();
  report();
  process.exit(0);
}, timeoutMs).unref();
const describe = (args) => args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
console.error = (...args) => summary.sdkErrors.push(describe(args));
console.warn = (...args) => summary.sdkErrors.push(describe(args));

const agentProcess = spawn(argv[0], argv.slice(1), { cwd, stdio: ["pipe", "pipe", "inherit"] });
const exited = new Promise((resolve) => agentProcess.on("exit", (code, signal) => resolve({ code, signal })));
// The SDK may hand a response to its caller before it has run the handlers of notifications that
// came before it, so the order on the wire is taken here, line by line, before the SDK parses it.
summary.wire = [];
let partial = "";
const decoder = new TextDecoder();
const tap = new TransformStream({
  transform(chunk, controller) {
    const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
    partial = lines.pop();
    for (const line of lines.filter((l) => l.trim())) {
      try {
        const m = JSON.parse(line);
        summary.wire.push(m.method ?? (m.result?.stopReason ? `stop ${m.result.stopReason}` : "answer"));
      } catch {
        summary.wire.push(`not JSON: ${line.slice(0, 200)}`);
      }
    }
    controller.enqueue(chunk);
  },
});
const stream = acp.ndJsonStream(Writable.toWeb(agentProcess.stdin), Readable.toWeb(agentProcess.stdout).pipeThrough(tap));

const app = acp
  .client({ name: "parley-tests-node-peer" })
  .onRequest(acp.methods.client.session.requestPermission, ({ params }) => {
    summary.permissionRequests.push(params);
    const option = params.options.find((o) => o.kind === "allow_once") ?? params.options[0];
    return { outcome: { outcome: "selected", optionId: option.optionId } };
  })
  .onRequest(acp.methods.client.fs.readTextFile, async ({ params }) => {
    summary.reads.push(params);
    return { content: await readFile(params.path, "utf8") };
  })
  .onRequest("*", ({ method }) => {
    summary.agentRequests.push(method);
    throw acp.RequestError.methodNotFound(method);
  })
  .onNotification(acp.methods.client.session.update, ({ params }) => {
    summary.updates.push(params);
  });

function reasoningOption(options) {
  return options.find((o) => o.category === "thought_level") ?? options.find((o) => /reason|thought|effort/i.test(o.id));
}

function flatValues(option) {
  return option.options.flatMap((o) => (o.options ? o.options : [o])).map((o) => o.value);
}

try {
  await app.connectWith(stream, async (sdkAgent) => {
    const agent = {
      request: (method, params) => {
        summary.waitingFor = method;
        return sdkAgent.request(method, params);
      },
    };
    summary.initialize = await agent.request(acp.methods.agent.initialize, {
      protocolVersion: acp.PROTOCOL_VERSION,
      clientCapabilities: { fs: { readTextFile: true, writeTextFile: false }, terminal: false },
      clientInfo: { name: "parley-tests-node-peer", version: "1.0.0" },
    });
    const session = await agent.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
    summary.newSession = session;
    const options = session.configOptions ?? [];
    const model = options.find((o) => o.category === "model");
    summary.setModel = await agent.request(acp.methods.agent.session.setConfigOption, {
      sessionId: session.sessionId,
      configId: model.id,
      value: "echo",
    });
    const reasoning = reasoningOption(summary.setModel.configOptions);
    if (reasoning) {
      const value = flatValues(reasoning).find((v) => v !== reasoning.currentValue) ?? reasoning.currentValue;
      summary.setReasoning = await agent.request(acp.methods.agent.session.setConfigOption, {
        sessionId: session.sessionId,
        configId: reasoning.id,
        value,
      });
      summary.reasoningValue = value;
    }
    summary.prompt = await agent.request(acp.methods.agent.session.prompt, {
      sessionId: session.sessionId,
      prompt: [{ type: "text", text: promptText }],
    });
    summary.list = await agent.request(acp.methods.agent.session.list, { cwd });
  });
} catch (error) {
  summary.error = String(error?.stack ?? error);
}
agentProcess.stdin.end();
summary.waitingFor = "the agent's exit";
summary.exit = await exited;
delete summary.waitingFor;
report();
