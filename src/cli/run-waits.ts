/**
 * Waiting on a run without touching its saves: `run.result()` flushes the store once the run
 * settles, which must not happen to a run this process detaches.
 */
import type { Run } from "../run/index.js";

/**
 * Resolves once the run's actor is done, errored or stopped, without touching its saves.
 *
 * @example
 * ```ts
 * const ended = (await settled(run)) === "done";
 * ```
 */
export function settled(run: Run): Promise<"done" | "error" | "stopped"> {
  return new Promise((resolve) => {
    const check = () => {
      const status = run.getSnapshot().status;
      if (status === "done" || status === "error" || status === "stopped") {
        queueMicrotask(() => subscription.unsubscribe());
        resolve(status);
        return true;
      }
      return false;
    };
    const subscription = run.subscribe({
      next: check,
      error: () => resolve("error"),
      complete: () => resolve(run.getSnapshot().status === "done" ? "done" : "stopped"),
    });
    check();
  });
}

/**
 * Resolves once `predicate` holds, checked on every snapshot (or once the run ends).
 *
 * @example
 * ```ts
 * await until(run, () => run.responseId !== null);
 * ```
 */
export function until(run: Run, predicate: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (predicate()) return resolve();
    const subscription = run.subscribe({
      next: () => {
        if (!predicate()) return;
        queueMicrotask(() => subscription.unsubscribe());
        resolve();
      },
      error: () => resolve(),
      complete: () => resolve(),
    });
  });
}
