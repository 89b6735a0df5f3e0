/** Where library code reports; only the CLI writes to the terminal. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export const silentLogger: Logger = { info: () => {}, warn: () => {} };

export const consoleLogger: Logger = {
  info: (msg) => process.stderr.write(`${msg}\n`),
  warn: (msg) => process.stderr.write(`warning: ${msg}\n`),
};

/** An error whose message is the whole story: the CLI prints it as one line, without a stack. */
export class UserError extends Error {
  override name = 'UserError';
}
