/**
 * `tool/approve`: the daemon asks whether an MCP tool call of one of this window's prompts
 * may run (PROTOCOL.md 9.1). The user answers in a notification: allow once, allow always
 * (this tool of this server, until its entry in mcp.json changes), or deny; closing it is a deny.
 */

import type { ToolApproveParams, ToolApproveResult } from './protocol';

export const APPROVE_CHOICES = { 'Allow once': 'allow_once', 'Allow always': 'allow_always', Deny: 'deny' } as const;

type Choice = keyof typeof APPROVE_CHOICES;

/** The part of `vscode.window` this needs (a parameter, so that it is testable without VS Code). */
export interface ApprovalWindow {
  showWarningMessage(message: string, options: { modal?: boolean; detail?: string }, ...items: Choice[]): Thenable<Choice | undefined>;
}

export async function askApproval(window: ApprovalWindow, params: ToolApproveParams): Promise<ToolApproveResult> {
  const hints = Object.entries(params.annotations ?? {})
    .filter(([, value]) => value === true)
    .map(([key]) => key)
    .sort();
  const message = `parley: run the MCP tool ${params.server}: ${params.name}?` + (hints.length ? ` [${hints.join(', ')}]` : '');
  const detail = `${JSON.stringify(params.arguments ?? {}, null, 2)}${params.description ? `\n\n${params.description}` : ''}`;
  const picked = await window.showWarningMessage(message, { modal: false, detail }, ...(Object.keys(APPROVE_CHOICES) as Choice[]));
  return { decision: picked ? APPROVE_CHOICES[picked] : 'deny' };
}
