/** Building the text of prompts. Pure functions: no `vscode` import. */

export interface SelectionContext {
  /** The file's path as shown to the user (relative to the workspace when it is inside one). */
  fileName: string;
  /** VS Code's language id (`typescript`, `python`, …). */
  languageId: string;
  /** The selected text. */
  text: string;
  /** 1-based first and last line of the selection. */
  startLine: number;
  endLine: number;
}

/** A fence longer than any run of backticks in the text, so the selection cannot close it. */
export function fenceFor(text: string): string {
  let longest = 0;
  for (const run of text.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  return '`'.repeat(Math.max(3, longest + 1));
}

/** The question, then the selection as a fenced block labelled with its file and language. */
export function selectionPrompt(question: string, sel: SelectionContext): string {
  const fence = fenceFor(sel.text);
  const lines = sel.startLine === sel.endLine ? `line ${sel.startLine}` : `lines ${sel.startLine}-${sel.endLine}`;
  const lang = sel.languageId.replace(/[^\w+#.-]/g, '');
  const body = sel.text.endsWith('\n') ? sel.text : `${sel.text}\n`;
  return `${question.trim()}\n\nFrom \`${sel.fileName}\` (${sel.languageId}), ${lines}:\n\n${fence}${lang}\n${body}${fence}\n`;
}
