#!/usr/bin/env node
/**
 * The `resume` command. Reserved: its subcommands (list, show, rm, prune, export) are the
 * next step of the project; until then it says so instead of failing obscurely.
 */
const [command] = process.argv.slice(2);
const usage = `Usage: resume <command>

Commands (coming in the next release): list, show <name>, rm <name>, prune, export <name>
`;
if (command === undefined || command === '--help' || command === '-h') {
  process.stdout.write(usage);
  process.exit(command === undefined ? 2 : 0);
}
process.stderr.write(`resume: \`${command}\` is not available yet in this version\n${usage}`);
process.exit(2);
