/** The help texts of `baton` and its run commands (docs/cli.md says the same at length). */

/** Option lines, descriptions in one column (two spaces after the longest flag). */
function optionLines(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`).join("\n");
}

const CONNECTION_OPTIONS: readonly (readonly [string, string])[] = [
  ["--store DIR", "where runs are saved (default: $BATON_STORE, else .baton/runs)"],
  [
    "--base-url URL",
    "the server (default: the run's own, else $OPENAI_BASE_URL, else api.openai.com)",
  ],
  ["--emulator", "start an emulator in this process and use it (no key needed)"],
  ["-h, --help", "show this help"],
];

export const EXIT_CODES_HELP = `Exit codes:
  0    completed (status, runs, cancel: done as asked)
  1    the run failed, ended incomplete or gave up; a local failure
  2    usage error, bad continuation token, unknown run id
  3    cannot reach the server, a request timed out, the key was refused, or OPENAI_API_KEY is not set
  4    the run ended cancelled (by 'baton cancel')
  130  detached by Ctrl-C (the run goes on server-side; 'baton resume' carries on)
  141  detached because stdout was closed ('baton run … | head')
  143  detached by SIGTERM`;

export const BATON_USAGE = `Usage: baton <command> [options]

Runs long OpenAI Responses API calls in background mode: nothing is lost, nothing is paid twice.
The answer goes to stdout; the run id, continuation token, progress and errors go to stderr.

Commands:
  run "prompt"            start a run and print its answer (--stream to stream it)
  resume <token|run-id>   carry on a run and print the rest of its answer
  status <token|run-id>   show where a run is (one request to the server)
  cancel <token|run-id>   cancel a run's response on the server
  runs                    list the runs in the store
  emulator                run a local emulator of the OpenAI Responses API (background mode)

Environment:
  OPENAI_API_KEY            the key (never printed nor saved)
  OPENAI_BASE_URL           the server, like --base-url
  OPENAI_MODEL              the model of 'baton run' (default o3)
  BATON_STORE               the store directory, like --store
  BATON_REQUEST_TIMEOUT_MS  status/cancel: longest wait for one answer (default 30000)

Ctrl-C detaches a run (it keeps going server-side); 'baton cancel' stops it.

${EXIT_CODES_HELP}

Run 'baton <command> --help' for the options of a command.`;

export const RUN_USAGE = `Usage: baton run [options] "prompt"

Starts a background response and prints its answer on stdout. The run id and continuation
token are printed on stderr as soon as the response exists; text is printed only once it is
saved, so that 'baton resume <run-id>' prints exactly the rest after any crash. Reads the prompt
from stdin when none is given (or with '-').

Options:
${optionLines([
  ["--stream", "stream the answer (default: poll for it)"],
  ["-m, --model M", "the model (default: $OPENAI_MODEL, else o3)"],
  ["--poll-interval MS", "pause between two polls (default 1000)"],
  ["-o, --output FILE", "write the answer to FILE, not stdout (a resume appends exactly the rest)"],
  ...CONNECTION_OPTIONS,
])}

Ctrl-C detaches: the run goes on server-side, exit code 130, 'baton resume <run-id>' carries on.

${EXIT_CODES_HELP}`;

export const RESUME_USAGE = `Usage: baton resume [options] <token|run-id>

Carries on a run and prints the rest of its answer on stdout (only text not printed before).
A run id (or the response id of a stored run) is read from the store. A token resumes the
stored run that follows the same response if there is one; otherwise it follows that response
as a new run (a stream token after its event; a poll token carries no position, so the answer
is printed from the start).

Options:
${optionLines([
  [
    "-o, --output FILE",
    "append the rest to FILE (default: the run's own --output), after what FILE holds",
  ],
  ...CONNECTION_OPTIONS,
])}

${EXIT_CODES_HELP}`;

export const STATUS_USAGE = `Usage: baton status [options] <token|run-id>

Shows a run: its state in the store, and the response's status, characters so far and age
(one request to the server). Exit code 0 whatever the status.

Options:
${optionLines([["--json", "print the report as JSON"], ...CONNECTION_OPTIONS])}

${EXIT_CODES_HELP}`;

export const CANCEL_USAGE = `Usage: baton cancel [options] <token|run-id>

Cancels the run's response on the server and prints its final status. Idempotent: a response
that already finished stays finished (exit code 0 either way). A run in the store is marked
finished too.

Options:
${optionLines(CONNECTION_OPTIONS)}

${EXIT_CODES_HELP}`;

export const RUNS_USAGE = `Usage: baton runs [options]

Lists the runs in the store, newest save first: run id, state, status (the outcome once done),
mode, age of the last save and response id. Reads the store only.

Options:
${optionLines([
  ["--store DIR", "the store (default: $BATON_STORE, else .baton/runs)"],
  ["--json", "print the runs as JSON"],
  ["-h, --help", "show this help"],
])}`;
