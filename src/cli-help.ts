import { environmentVariables } from './config.ts';

/** One option of a command: with a `value` placeholder it takes a string, without one it is a flag. */
export interface CliOption {
  name: string;
  value?: string;
  required?: boolean;
  default?: string;
  help: string;
}

/** A command as `--help` describes it and its arguments are parsed. */
export interface CliCommand {
  /** The words that invoke it: `tenant create`. */
  name: string;
  summary: string;
  /** A paragraph for its own `--help`, after the usage line. */
  details?: string;
  options: CliOption[];
  /** Its help lists every environment variable (the server's settings). */
  listsEnvironment?: boolean;
}

const HELP_OPTION: CliOption = { name: 'help', help: 'show this help' };

/** `tenant create --slug S --name N [--json]`: required options bare, the others in brackets. */
export function usageLine(command: CliCommand): string {
  const parts = command.options.map((o) => {
    const text = `--${o.name}${o.value ? ` ${o.value}` : ''}`;
    return o.required ? text : `[${text}]`;
  });
  return ['tessera', command.name, ...parts].join(' ');
}

export function commandHelp(command: CliCommand): string {
  const options = [...command.options, HELP_OPTION].map((o) => {
    const left = `${o.name === 'help' ? '-h, ' : ''}--${o.name}${o.value ? ` ${o.value}` : ''}`;
    const notes = [o.required ? 'required' : '', o.default !== undefined ? `default ${o.default}` : ''].filter(Boolean).join(', ');
    return `  ${left.padEnd(26)} ${o.help}${notes ? ` (${notes})` : ''}`;
  });
  const environment = command.listsEnvironment
    ? `\n\n${environmentHelp()}`
    : '\n\nIt reads its database from DATABASE_URL, or DATA_DIR for the embedded one (`tessera help` lists every variable).';
  return `Usage: ${usageLine(command)}\n\n${capitalize(command.summary)}.${command.details ? ` ${command.details}` : ''}\n\nOptions:\n${options.join('\n')}${environment}`;
}

export function generalHelp(commands: readonly CliCommand[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  const lines = commands.map((c) => `  ${c.name.padEnd(width)} ${c.summary}`);
  return `Usage: tessera <command> [options]   (npx tessera …, or node bin/tessera.js …)

Commands:
${lines.join('\n')}

\`tessera <command> --help\` shows a command's options.

${environmentHelp()}`;
}

/** Every environment variable of the schema, one line each: name, what it does, its default. */
export function environmentHelp(): string {
  const variables = environmentVariables();
  const width = Math.max(...variables.map((v) => v.name.length)) + 2;
  const lines = variables.map((v) => `  ${v.name.padEnd(width)} ${v.text} [default: ${v.default}]`);
  return `Environment variables (docs/configuration.md says more about each):\n${lines.join('\n')}`;
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
