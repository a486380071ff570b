/**
 * The `vscode` module for tests (the test bundles alias `vscode` here): jest-mock-vscode's
 * mock, made with jest-mock's standalone mock functions, plus the `env` namespace it lacks.
 */
import { createVSCodeMock } from 'jest-mock-vscode';
import { ModuleMocker } from 'jest-mock';

/** Makes the mock functions; `mocker.clearAllMocks()` forgets their calls. */
export const mocker = new ModuleMocker(globalThis);

// The mock's members are typed loosely on purpose: tests reach into them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Mocked = any;

const vscode: Mocked = createVSCodeMock(mocker as Mocked);

export const env = {
  clipboard: { writeText: mocker.fn(async (_text: string) => {}), readText: mocker.fn(async () => '') },
  openExternal: mocker.fn(async (_uri: unknown) => true),
  appName: 'Visual Studio Code (mock)',
};

export const window: Mocked = vscode.window;
export const workspace: Mocked = vscode.workspace;
export const commands: Mocked = vscode.commands;
export const Uri: Mocked = vscode.Uri;
export const StatusBarAlignment: Mocked = vscode.StatusBarAlignment;
export const ThemeColor: Mocked = vscode.ThemeColor;
export const Disposable: Mocked = vscode.Disposable;
export const EventEmitter: Mocked = vscode.EventEmitter;
export const Selection: Mocked = vscode.Selection;
export const Position: Mocked = vscode.Position;
export const Range: Mocked = vscode.Range;
export default { ...vscode, env };
