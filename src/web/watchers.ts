// One RunWatcher per run that someone follows live, shared by all of that run's SSE clients, so a run
// is polled once however many tabs show it, and not at all once the last one leaves.
import { RunWatcher, runDir } from './runs.js';

interface Entry {
  watcher: RunWatcher;
  /** Resolves after the first poll, when the watcher has a snapshot to give a new client. */
  ready: Promise<void>;
  /** Clients holding it. */
  refs: number;
}

export class RunWatchers {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly rootReal: string,
    private readonly pollMs: number,
  ) {}

  /** The run's watcher, started by its first holder; each acquire() needs one release(). */
  acquire(id: string): Pick<Entry, 'watcher' | 'ready'> {
    let entry = this.entries.get(id);
    if (!entry) {
      const watcher = new RunWatcher(runDir(this.rootReal, id), id, this.pollMs);
      entry = { watcher, ready: watcher.start(), refs: 0 };
      this.entries.set(id, entry);
    }
    entry.refs++;
    return entry;
  }

  /** Stops the run's watcher when its last holder lets go. */
  release(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.refs--;
    if (entry.refs <= 0) {
      entry.watcher.stop();
      this.entries.delete(id);
    }
  }

  stopAll(): void {
    for (const { watcher } of this.entries.values()) watcher.stop();
    this.entries.clear();
  }
}
