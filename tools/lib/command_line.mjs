// The command line of every Node tool, read one way: util.parseArgs, strictly (an unknown option, a missing
// value or a stray argument is a usage error, never ignored), with -h/--help and a count of positional arguments.

import { parseArgs } from 'node:util';

export class UsageError extends Error {}

/**
 * `args` read by util.parseArgs against `options` (its option configurations; --help/-h is added) with
 * between `positionals[0]` and `positionals[1]` positional arguments: { values, positionals }. Anything
 * else throws UsageError with a sentence naming what was wrong.
 */
export function parseCommandLine({ options = {}, positionals: [fewest, most] = [0, 0], args = process.argv.slice(2) }) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: most > 0, strict: true });
  } catch (error) {
    throw new UsageError(error.message);
  }
  const count = parsed.positionals.length;
  if (!parsed.values.help && count < fewest) {
    throw new UsageError(`needs ${fewest === most ? '' : 'at least '}${fewest} arguments, not ${count}`);
  }
  if (!parsed.values.help && count > most) throw new UsageError(`unexpected argument "${parsed.positionals[most]}"`);
  return parsed;
}

/**
 * parseCommandLine for a script run from the shell, then `interpret` (which turns { values, positionals }
 * into the script's settings and may throw UsageError): --help prints `usage` and exits 0; a usage error
 * prints `name: <what was wrong>` and `usage` on stderr and exits 1.
 */
export function commandLineOrExit(name, usage, spec, interpret = (parsed) => parsed) {
  try {
    const parsed = parseCommandLine(spec);
    if (parsed.values.help) {
      process.stdout.write(usage);
      process.exit(0);
    }
    return interpret(parsed);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${name}: ${error.message}\n\n${usage}`);
    process.exit(1);
  }
}

/** `text`, the value of option `flag`, as a whole number from `least` to `most`, else a UsageError. */
export function wholeNumber(flag, text, { least = 1, most = Number.MAX_SAFE_INTEGER } = {}) {
  const number = Number(text);
  if (text.trim() === '' || !Number.isInteger(number) || number < least || number > most) {
    const range = most === Number.MAX_SAFE_INTEGER ? `of at least ${least}` : `from ${least} to ${most}`;
    throw new UsageError(`${flag} must be a whole number ${range}, not "${text}"`);
  }
  return number;
}
